"""The one-shot Lightning modules: NNI 3.0's, extended where the pose search needs it.

- the architecture optimiser takes ``search.arch_lr`` / ``search.arch_weight_decay`` from the
  config (NNI hard-codes its weight decay), and α/β in a fixed order (resumable);
- validation runs the pose evaluator (AP / PCKh) each epoch;
- ``none`` and ``sync`` (the PNFS baselines): α/β frozen uniform, or trained jointly with the
  weights on the training loss;
- ``darts2``: second-order DARTS (:func:`~strategies.unrolled.unrolled_arch_gradient`);
- the hardware-aware objective in the architecture loss (:mod:`strategies.cost`);
- SPOS draws its paths from a generator seeded by ``seed`` and checkpointed with the weights
  (NNI's sampling modules draw from an unseeded ``RandomState()``: no two runs alike).

The bi-level modules train the weights on one half of the training set and α/β on the other
(``batch["train"]`` / ``batch["val"]`` of NNI's combined loader).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import torch
import torch.distributed as dist
from nni.nas.oneshot.pytorch.differentiable import (DartsLightningModule,
                                                      LinearTemperatureScheduler)
from nni.nas.oneshot.pytorch.sampling import EnasLightningModule, RandomSamplingLightningModule
from nni.nas.oneshot.pytorch.supermodule.differentiable import GumbelSoftmax
import numpy as np
from torch import nn

from strategies.aux_skip import aux_skip_weight, set_aux_skip
from strategies.beta_decay import beta_decay_loss, beta_decay_weight
from strategies.cost import ExpectedCost, objective_loss
from strategies.edge_mixing import set_edge_mixing
from strategies.latency import LatencyTable, latency_table_path, space_latency_table
from strategies.unrolled import unrolled_arch_gradient
from trainers.config.schema import Config

__all__ = ["PoseDartsModule", "PoseGumbelModule", "FrozenArchModule", "SyncModule",
           "UnrolledDartsModule", "PoseRandomSamplingModule", "PoseEnasModule"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def forward_without_graph(module: nn.Module | None) -> Iterator[None]:
    """Within the block, ``module``'s forward runs under ``torch.no_grad()`` (its outputs carry
    no graph back into it) while the rest of the network records as usual; a no-op for
    ``None``. The grad mode is restored after ``module`` returns, and on leaving the block
    whatever happened inside it."""
    if module is None:
        yield
        return
    modes: list[bool] = []

    def enter(*_: Any) -> None:
        modes.append(torch.is_grad_enabled())
        torch.set_grad_enabled(False)

    def leave(*_: Any) -> None:
        torch.set_grad_enabled(modes.pop())

    outer = torch.is_grad_enabled()
    handles = [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.set_grad_enabled(outer)


@contextlib.contextmanager
def constants(params: list[nn.Parameter]) -> Iterator[None]:
    """``params`` require no gradient within the block (restored on leaving, however it is
    left): autograd neither computes their gradients nor keeps what only those need."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def average_over_ranks(grads: list[torch.Tensor]) -> None:
    """Average architecture gradients over DDP ranks in place: ``torch.autograd.grad`` bypasses
    DDP's all-reduce, and each rank's estimate comes from its own shard (unaveraged, α/β would
    drift apart across processes)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for g in grads:
            dist.all_reduce(g)
            g /= dist.get_world_size()


class _PoseOneShotMixin:
    """Validation through the pose evaluator and the configured architecture optimiser."""

    cfg: Config
    training_module: Any

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        return self.training_module.validation_step(batch, batch_idx)

    def on_validation_epoch_start(self) -> None:
        self.training_module.on_validation_epoch_start()

    def on_validation_epoch_end(self) -> None:
        self.training_module.on_validation_epoch_end()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.training_module.on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.training_module.on_load_checkpoint(checkpoint)

    def arch_parameters(self) -> list[nn.Parameter]:
        """α/β in module order (NNI returns a set, whose order changes between processes and
        would scramble the optimiser state on resume)."""
        seen: dict[int, nn.Parameter] = {}
        for module in self.supernet_modules():  # type: ignore[attr-defined]
            if hasattr(module, "arch_parameters"):
                for p in module.arch_parameters():
                    seen.setdefault(id(p), p)
        return list(seen.values())

    def configure_architecture_optimizers(self):
        params = self.arch_parameters()
        if not params:
            raise ValueError("the space has no architecture parameters to search")
        s = self.cfg.search
        return torch.optim.Adam(params, lr=s.arch_lr, betas=(0.5, 0.999),
                                weight_decay=s.arch_weight_decay)


class PoseDartsModule(_PoseOneShotMixin, DartsLightningModule):
    """First-order DARTS (NNI's supernet and bi-level loop) with the pose evaluator, the
    configured arch optimiser, and the hardware-aware objective: with ``search.goal.objective``
    other than ``metric`` the architecture loss is :func:`~strategies.cost.objective_loss` of
    the relaxation's expected GFLOPs (:class:`~strategies.cost.ExpectedCost`)."""

    def __init__(self, training_module: Any, cfg: Config) -> None:
        super().__init__(training_module, arc_learning_rate=cfg.search.arch_lr,
                         warmup_epochs=cfg.search.warmup_epochs, log_prob_every_n_step=10**9)
        self.cfg = cfg
        self.expected_cost: Any = None

    #: whether α/β are trained (the expected cost is only measured then)
    searches_architecture = True

    def on_fit_start(self) -> None:
        set_edge_mixing(self.training_module.model, self.cfg.search.edge_mixing)
        if (self.searches_architecture and self.cfg.search.goal.objective != "metric"
                and self.expected_cost is None):  # the target > 0: checked by the config
            alphas: dict[str, Any] = {}
            for m in self.supernet_modules():
                alpha = getattr(m, "_arch_alpha", None)
                if isinstance(alpha, nn.ParameterDict):  # mixed operations (width choices)
                    alphas.update(alpha.items())
                elif alpha is not None:
                    alphas[m.label] = alpha
            self.expected_cost = self._expected_cost(alphas)
        return super().on_fit_start()

    def _expected_cost(self, alphas: dict[str, Any]) -> ExpectedCost:
        """GFLOPs, or with ``search.goal.cost latency`` the table's latency: rank 0 measures the
        table and writes it, the other DDP ranks read it (every rank must see the same costs, or
        α/β would drift apart)."""
        model, size = self.training_module.model, self.cfg.model.input_size
        if self.cfg.search.goal.cost != "latency":
            return ExpectedCost(model, size, alphas)
        path = latency_table_path(self.cfg, self.training_module.out_dir)
        if self.trainer.is_global_zero:
            table = space_latency_table(self.cfg, path)
            cost = ExpectedCost(model, size, alphas, latency=table)
            table.save()
        self.trainer.strategy.barrier("latency_table")
        if not self.trainer.is_global_zero:
            table = LatencyTable(path, size)
            cost = ExpectedCost(model, size, alphas, latency=table)
            if table.measured:
                raise RuntimeError(f"rank {self.global_rank} had to time {table.measured} "
                                   f"operations missing from rank 0's table {path}")
        logger.info(f"expected cost: {cost.unit}, fixed part {cost.fixed:.4g}, whole relaxation "
                    f"{cost.total:.4g}")
        return cost

    def on_train_epoch_start(self) -> None:
        """DARTS-'s auxiliary skip β for this epoch (``search.collapse.aux_skip``)."""
        initial = self.cfg.search.collapse.aux_skip
        if initial:
            weight = aux_skip_weight(initial, self.trainer.current_epoch, self.trainer.max_epochs)
            set_aux_skip(self.training_module.model, weight)
            self.log("search/aux_skip", weight, on_step=False, on_epoch=True)
        return super().on_train_epoch_start()

    def arch_loss(self, batch: Any, batch_idx: int, weight_step: bool = False) -> torch.Tensor:
        """The architecture step's loss: the pose loss, under the search objective, plus
        β-DARTS's Beta-Decay term when ``search.collapse.beta_decay`` is set. ``weight_step``:
        the weights step on this loss too (``sync``), so its pose loss is the step's
        ``train/loss``; otherwise (DARTS's validation batch) it is ``search/arch_loss``."""
        if weight_step:
            loss = self.training_module.training_step(batch, batch_idx)
        else:
            loss = self.training_module.batch_loss(batch)
            if loss is not None:
                self.log("search/arch_loss", loss.detach(), on_step=False, on_epoch=True,
                         batch_size=batch["size"], sync_dist=True)  # averaged over ranks
        if loss is None:
            return loss
        if self.expected_cost is not None:
            expected = self.expected_cost()
            self.log(f"search/expected_{'ms' if self.expected_cost.unit == 'ms' else 'gflops'}",
                     expected.detach(), on_step=False, on_epoch=True, batch_size=batch["size"])
            goal = self.cfg.search.goal
            loss = objective_loss(loss, expected, goal.objective, goal.target,
                                  goal.penalty_weight)
        weight = beta_decay_weight(self.cfg.search.collapse.beta_decay,
                                   self.trainer.current_epoch, self.warmup_epochs,
                                   self.trainer.max_epochs)
        if weight:
            beta = beta_decay_loss(self.arch_parameters())
            self.log("search/beta_decay", beta.detach(), on_step=False, on_epoch=True,
                     batch_size=batch["size"])
            loss = loss + weight * beta
        return loss

    def decision_free_backbone(self) -> nn.Module | None:
        """The network's backbone when it holds no architecture decision (PoseNFS's space: α/β
        only in the heads), else ``None`` (width choices). Decided from the structure: no NNI
        supernet module and no α/β among the backbone's modules and parameters."""
        backbone = getattr(self.training_module.model, "backbone", None)
        if backbone is None:
            return None
        arch = {id(p) for p in self.arch_parameters()}
        supernet = {id(m) for m in self.supernet_modules()}
        if any(id(m) in supernet for m in backbone.modules()) or any(
                id(p) in arch for p in backbone.parameters()):
            return None
        return backbone

    def arch_step(self, arch_opt: Any, batch: Any, batch_idx: int) -> None:
        """One architecture step on ``batch``: the gradient of the architecture loss with
        respect to α/β alone, averaged over DDP ranks, then the architecture optimiser's step.
        The weights are held as constants meanwhile (:func:`constants`): autograd computes no
        weight gradient (the weight step computes its own after zeroing them) and keeps nothing
        only those need — the inputs of the convolutions, unless a width choice's mask makes
        the weight itself depend on α (``supernet_step``, width choices on, the previous code
        and this alternating twice: peak RSS 4.54 / 4.47 → 4.33 / 4.37 GiB, step 5.96 / 5.38 →
        5.70 / 4.92 s; no change measured without widths). A backbone that holds no decision
        (:meth:`decision_free_backbone`) runs its forward without recording a graph: α/β's
        gradient never flows through it, so it need not keep its activations
        (``benchmarks.supernet_step --no-widths``, PoseNFS's space at 256×192, batch 8: peak
        RSS 4.56 / 4.51 → 4.42 / 4.39 GiB in two alternating pairs, the step within noise).
        Under fp16 mixed precision (a loss scaler) it is an ordinary scaled backward through
        the whole network."""
        if str(self.trainer.precision) == "16-mixed":
            loss = self.arch_loss(batch, batch_idx)
            arch_opt.zero_grad()
            self.manual_backward(loss)
        else:
            arch = self.arch_parameters()
            arch_ids = {id(a) for a in arch}
            weights = [p for p in self.training_module.model.parameters()
                       if p.requires_grad and id(p) not in arch_ids]
            with forward_without_graph(self.decision_free_backbone()), constants(weights):
                loss = self.arch_loss(batch, batch_idx)
                arch_opt.zero_grad()
                grads = torch.autograd.grad(loss, arch, allow_unused=True)
            average_over_ranks([g for g in grads if g is not None])
            for a, g in zip(arch, grads):
                a.grad = g  # None where α does not reach the loss, as backward() leaves it
        arch_opt.step()

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        arch_opt = self.architecture_optimizers()
        trn, val = batch["train"], batch["val"]
        self.training_module.count_skips(val)
        if self.trainer.current_epoch >= self.warmup_epochs and val["size"]:
            self.resample()
            self.arch_step(arch_opt, val, 2 * batch_idx)
        self.resample()
        with self.arch_as_constants():
            loss = self.training_module.training_step(trn, 2 * batch_idx + 1)
            if loss is not None:
                self.advance_optimization(loss, batch_idx, self.gradient_clip_val)
        self.advance_lr_schedulers(batch_idx)
        return loss

    @contextlib.contextmanager
    def arch_as_constants(self) -> Iterator[None]:
        """α/β as constants within the block (``requires_grad`` off, restored on leaving): the
        weight step's backward then computes no gradient for them — NNI's loop computed one and
        never used it, since the architecture step replaces α/β's gradients with its own — and
        keeps no candidate output for it (each mixed edge's ``softmax(α)_i · op_i(x)`` saved
        ``op_i(x)`` for α's sake). The weights' gradients are the same computation.
        Single-process only: under DDP the reducer expects a gradient for every parameter it
        registered, α/β included, so they keep theirs there."""
        arch = ([p for p in self.arch_parameters() if p.requires_grad]
                if self.trainer.world_size == 1 else [])
        with constants(arch):
            yield


class PoseGumbelModule(PoseDartsModule):
    """GumbelDARTS: NNI's Gumbel-softmax supernet (``GumbelDARTS`` mutation), our bi-level step
    (with the search objective), temperature 1.0 → 0.33 over the epochs."""

    def __init__(self, training_module: Any, cfg: Config) -> None:
        super().__init__(training_module, cfg)
        self.temperature = LinearTemperatureScheduler(1.0, 0.33)

    def on_train_epoch_start(self) -> None:
        tau = self.temperature.step(self.trainer.current_epoch, self.trainer.max_epochs)
        for module in self.modules():
            if isinstance(module, GumbelSoftmax):
                module.tau = tau
        return super().on_train_epoch_start()


class FrozenArchModule(PoseDartsModule):
    """PNFS ``none``: α/β stay uniform (zero logits, never updated); weights train on the whole
    training set with the relaxed (equally weighted) network."""

    searches_architecture = False

    def on_fit_start(self) -> None:
        with torch.no_grad():
            for p in self.arch_parameters():
                p.zero_()
                p.requires_grad_(False)
        return super().on_fit_start()

    def on_train_epoch_start(self) -> None:  # never unfreeze
        for p in self.arch_parameters():
            p.requires_grad_(False)

    def configure_architecture_optimizers(self):
        return None

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self.training_module.training_step(batch, batch_idx)
        self.advance_optimization(loss, batch_idx)
        self.advance_lr_schedulers(batch_idx)
        return loss


class SyncModule(PoseDartsModule):
    """PNFS ``sync``: α/β and weights take a step together on the same training loss (after
    ``warmup_epochs`` with α/β frozen)."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        arch_opt = self.architecture_optimizers()
        searching = self.trainer.current_epoch >= self.warmup_epochs
        if searching:
            arch_opt.zero_grad()
        loss = (self.arch_loss(batch, batch_idx, weight_step=True) if searching
                else self.training_module.training_step(batch, batch_idx))
        if loss is None:
            return None
        self.advance_optimization(loss, batch_idx)  # zero_grad (weights), backward, step
        if searching:
            arch_opt.step()
        self.advance_lr_schedulers(batch_idx)
        return loss


class UnrolledDartsModule(PoseDartsModule):
    """Second-order DARTS: the architecture step uses :func:`unrolled_arch_gradient` with
    ξ = the current weight learning rate; then the ordinary weight step."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        arch_opt = self.architecture_optimizers()
        trn, val = batch["train"], batch["val"]
        self.training_module.count_skips(val)
        if self.trainer.current_epoch >= self.warmup_epochs and trn["size"] and val["size"]:
            arch = self.arch_parameters()
            arch_ids = {id(a) for a in arch}
            weights = [p for p in self.training_module.model.parameters()
                       if p.requires_grad and id(p) not in arch_ids]
            buffers = [b for b in self.training_module.model.buffers() if b.is_floating_point()
                       or b.dtype == torch.long]
            opt = self.optimizers()
            opt = opt[0] if isinstance(opt, list) else opt
            xi = float(opt.param_groups[0]["lr"])
            step = self.training_module.batch_loss  # the virtual step: not the weights' loss
            grads = unrolled_arch_gradient(weights, arch, lambda: step(trn),
                                           lambda: self.arch_loss(val, 2 * batch_idx), xi,
                                           buffers)
            average_over_ranks(grads)
            arch_opt.zero_grad()
            for a, g in zip(arch, grads):
                a.grad = g
            arch_opt.step()
        loss = self.training_module.training_step(trn, 2 * batch_idx + 1)
        self.advance_optimization(loss, batch_idx)
        self.advance_lr_schedulers(batch_idx)
        return loss


class PoseRandomSamplingModule(_PoseOneShotMixin, RandomSamplingLightningModule):
    """SPOS (NNI's RandomOneShot): one uniformly sampled path per step."""

    def __init__(self, training_module: Any, cfg: Config) -> None:
        super().__init__(training_module)
        self.cfg = cfg
        self.fixed_sample: dict | None = None  # set while ranking paths after training
        # the same stream on every DDP rank: each step trains one path, as in the paper
        self._rng = np.random.RandomState(cfg.seed)
        self._labels: dict[str, Any] | None = None

    def configure_architecture_optimizers(self):
        return None

    def resample(self) -> dict[str, Any]:
        """One uniformly sampled path (every decision of the space), from the seeded stream."""
        if self._labels is None:
            self._labels = self.training_module.model.simplify()
        sample = {label: m.random(random_state=self._rng) for label, m in self._labels.items()}
        for module in self.supernet_modules():
            module.resample(memo=dict(sample))
        return sample

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        kind, keys, pos, has_gauss, gauss = self._rng.get_state()
        checkpoint["spos_sampler"] = {"kind": kind, "keys": torch.from_numpy(keys.copy()),
                                      "pos": int(pos), "has_gauss": int(has_gauss),
                                      "gauss": float(gauss)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("spos_sampler")
        if state is not None:  # checkpoints from before the seeded sampler: a fresh stream
            self._rng.set_state((state["kind"], state["keys"].numpy(), state["pos"],
                                 state["has_gauss"], state["gauss"]))

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        if self.fixed_sample is None:
            self.resample()
        else:
            for module in self.supernet_modules():
                module.resample(memo=dict(self.fixed_sample))
        return self.training_module.validation_step(batch, batch_idx)


class PoseEnasModule(_PoseOneShotMixin, EnasLightningModule):
    """ENAS (NNI): an RL controller samples paths; weights train on the first half, the
    controller's reward is the negative heatmap loss of a sampled path on the second half."""

    def __init__(self, training_module: Any, cfg: Config) -> None:
        super().__init__(training_module, batches_per_update=5, warmup_epochs=cfg.search.warmup_epochs,
                         reward_metric_name="reward")
        self.cfg = cfg

    def configure_architecture_optimizers(self):
        return None  # the controller (tianshou policy) has its own optimiser

    def training_step(self, batch_packed: Any, batch_idx: int) -> Any:
        batch, mode = batch_packed
        out = None
        if batch["size"] == 0:
            return None
        if mode == "train":
            self.policy.eval()
            self.resample()
            out = self.training_module.training_step(batch, batch_idx)
            self.advance_optimization(out, batch_idx)
        elif self.trainer.current_epoch >= self.warmup_epochs:
            self.policy.train()
            self.resample()
            with torch.no_grad():
                reward = -float(self.training_module.compute_loss(batch))
            self._replay_buffer.update(self.generator.send_reward(reward))
            self._trajectory_counter += 1
            if self._trajectory_counter % self.batches_per_update == 0:
                self.policy.train()
                self.policy.update(0, self._replay_buffer)
        self.advance_lr_schedulers(batch_idx)
        return out

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        for module in self.supernet_modules():
            module.resample(memo=dict(self.export()))
        return self.training_module.validation_step(batch, batch_idx)

    def export(self) -> dict:
        """The controller's most probable choice per label."""
        return {label: (max(dist, key=dist.get) if not label.endswith("/input")
                        else [max(dist, key=dist.get)])
                for label, dist in self.export_probs().items()}
