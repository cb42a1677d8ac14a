"""What can be searched: candidate operations, HRNet with width choices, PNFS fabrics, part heads."""
