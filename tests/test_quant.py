"""PACT quantization-aware training (trainers.engine.qat)."""
import pytest
import torch
from torch import nn

from trainers.config.schema import QuantConfig
from trainers.engine.qat import (PACT, WeightFakeQuant, calibrate_pact, is_qat_state, pact_modules,
                            pact_quantize, prepare_qat)

PACT8 = QuantConfig(method="pact")


def test_pact_forward_and_gradient_follow_the_paper():
    """α = 1, 2 bits (3 levels of 1/3): y_q = round(clip(x, 0, 1) · 3) / 3 (halves to even);
    ∂y_q/∂x = 1 on [0, α), 0 elsewhere; ∂y_q/∂α = 1 where x ≥ α (Choi et al. 2018, eq. 3)."""
    x = torch.tensor([-1.0, 0.2, 0.5, 0.99, 1.0, 3.0], requires_grad=True)
    alpha = torch.tensor(1.0, requires_grad=True)
    y = pact_quantize(x, alpha, bits=2)
    assert y.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0, 1.0, 1.0])
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    y.backward(g)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0, 0.0]
    assert float(alpha.grad) == 11.0


@pytest.mark.parametrize("per_channel", [True, False])
def test_weights_are_on_the_symmetric_int8_grid(per_channel):
    w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    q = WeightFakeQuant(8, per_channel)(w)
    top = w.abs().amax(dim=(1, 2, 3), keepdim=True) if per_channel else w.abs().max()
    steps = q / (top / 127)
    assert torch.allclose(steps, steps.round(), atol=1e-4) and steps.abs().max() <= 127 + 1e-4
    if per_channel:  # each channel's largest weight is exactly representable (±127 steps)
        assert torch.allclose(q.abs().amax(dim=(1, 2, 3)), w.abs().amax(dim=(1, 2, 3)), rtol=1e-6)
    else:
        assert float(q.abs().max()) == pytest.approx(float(w.abs().max()), rel=1e-6)
    assert (q - w).abs().max() <= float(top.max()) / 127 / 2 + 1e-6


def test_calibration_sets_alpha_to_the_largest_activation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.ReLU())
    images = [torch.randn(2, 3, 8, 8) for _ in range(3)]
    with torch.no_grad():
        first = max(float(net[0](x).max()) for x in images)
    prepare_qat(net, PACT8)
    with torch.no_grad():  # the weight the prepared conv uses is the fake-quantized one
        first_q = max(float(net[0](x).max()) for x in images)
    assert calibrate_pact(net, images) == 3
    a1, a2 = (float(m.alpha.detach()) for m in pact_modules(net))
    assert a1 == pytest.approx(first_q) and abs(first_q - first) < 0.05 * first
    assert a2 > 0


def test_prepare_qat_replaces_every_relu_and_the_state_round_trips():
    from search_space.models import build_model
    from trainers.network.build import build_network, spec_from_model
    from search_space.errors import UserInputError

    net = build_model("hrnet_tiny", "coco")
    relus = sum(isinstance(m, nn.ReLU) for m in net.modules())
    convs = sum(isinstance(m, nn.Conv2d) for m in net.modules())
    prepare_qat(net, PACT8)
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    assert len(pact_modules(net)) == relus
    state = net.state_dict()
    assert is_qat_state(state) and sum(".parametrizations.weight.original" in k for k in state) == convs
    with pytest.raises(ValueError, match="already prepared"):
        prepare_qat(net, PACT8)
    for m in pact_modules(net):
        m.alpha.data.fill_(3.0)
    x = torch.randn(2, 3, 128, 96)
    again = build_network(spec_from_model("hrnet_tiny", "coco"), state, quant=PACT8).eval()
    with torch.no_grad():
        assert torch.equal(again(x), net.eval()(x))
    with pytest.raises(UserInputError, match="QAT"):
        build_network(spec_from_model("hrnet_tiny", "coco"), state)


def test_int8_export_quantizes_pact_outputs_on_pacts_own_grid(tmp_path):
    """A conv → PACT(α = 1.5) → conv → PACT(α = 2.5) → conv toy, calibrated on inputs that
    never reach either α: the int8 model quantizes each PACT output with scale α / 255 and zero
    point 0 (PACT's 2^8 − 1 steps on [0, α]), not with the calibrated range (≈ 0.1 / 255 here);
    the two ends QAT never quantized stay float (the first conv reads the image itself, the
    last writes the output with its float weights); names are short, the input and output keep
    theirs, and onnxruntime runs it."""
    import onnx
    import onnxruntime as ort
    import numpy as np

    from trainers.deploy.int8 import export_int8, float_twin

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), PACT(8, 1.5), nn.Conv2d(4, 4, 3, padding=1),
                        PACT(8, 2.5), nn.Conv2d(4, 2, 1)).eval()
    twin = float_twin(net)
    calib = [np.random.default_rng(i).uniform(-0.1, 0.1, (2, 3, 8, 8)).astype(np.float32)
             for i in range(3)]
    export_int8(twin, tmp_path / "m.onnx", (8, 8), calib)
    model = onnx.load(str(tmp_path / "m.onnx"))
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = {out: n for n in model.graph.node for out in n.output}
    first, middle, last = [n for n in model.graph.node if n.op_type == "Conv"]
    # the middle conv is the int8 one: it reads PACT 1 quantized on [0, 1.5] and the quantizer
    # folds PACT 2 into its output, quantized on [0, 2.5]
    grids = []
    for tensor in (producers[middle.input[0]].input[0], middle.output[0]):
        q = producers[tensor] if producers[tensor].op_type == "QuantizeLinear" else next(
            n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor)
        grids.append((float(consts[q.input[1]]), int(consts[q.input[2]])))
    assert grids == [(pytest.approx(1.5 / 255, rel=1e-6), 0),
                     (pytest.approx(2.5 / 255, rel=1e-6), 0)]
    assert producers[middle.input[1]].op_type == "DequantizeLinear"  # int8 weights
    # the ends stay float: the image goes straight into the first conv, whose weights are
    # float; the last conv's weights are float and it writes the graph's output itself
    assert first.input[0] == "image" and first.input[1] in consts
    assert last.input[1] in consts and last.output[0] == model.graph.output[0].name
    assert all(n.name.startswith("n") for n in model.graph.node)
    assert [v.name for v in model.graph.input] == ["image"]
    out = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": calib[0]})[0]
    assert out.shape == (2, 2, 8, 8)


def test_float_ends_walk_back_through_the_parts_assembly(tmp_path):
    """A hand-built graph shaped like a fabric network's ends: image → stem Conv → Relu → two
    part head Convs → Concat → Gather (the joint order) → heatmaps. The float ends are the
    stem (it reads the image) and, walking back from the output through Gather and Concat (they
    only move values), the two head convs; the Relu between them is quantized as usual."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    from trainers.deploy.int8 import float_ends

    w = lambda name, c_out, c_in: numpy_helper.from_array(
        np.ones((c_out, c_in, 1, 1), np.float32), name)
    nodes = [helper.make_node("Conv", ["image", "w0"], ["s"], name="stem"),
             helper.make_node("Relu", ["s"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w1"], ["h1"], name="head1"),
             helper.make_node("Conv", ["r", "w2"], ["h2"], name="head2"),
             helper.make_node("Concat", ["h1", "h2"], ["c"], name="concat", axis=1),
             helper.make_node("Gather", ["c", "order"], ["heatmaps"], name="order", axis=1)]
    graph = helper.make_graph(
        nodes, "ends", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 3, 4, 4])],
        [w("w0", 4, 3), w("w1", 2, 4), w("w2", 1, 4),
         numpy_helper.from_array(np.array([2, 0, 1], np.int64), "order")])
    save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    assert sorted(float_ends(tmp_path / "m.onnx")) == ["concat", "head1", "head2", "order", "stem"]


def test_shape_reads_the_quantized_tensor_and_the_dequantize_only_it_read_goes():
    """A hand-built QDQ graph: x → Q → DQ → Shape (the only reader of that DQ) and
    x → Q → DQ2 → Relu, with Shape also reading DQ2. After the rewiring both Shapes read the
    quantized tensors, the first DQ and its scale and zero point are gone, DQ2 stays for its Relu,
    and onnxruntime gives the same outputs: the shape (1, 2, 3, 4) and relu(dequantized x)."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from trainers.deploy.int8 import shapes_before_dequantize

    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "s"),
             numpy_helper.from_array(np.array(10, np.uint8), "z"),
             numpy_helper.from_array(np.array(0.25, np.float32), "s1"),
             numpy_helper.from_array(np.array(3, np.uint8), "z1")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s1", "z1"], ["d1"]),
             helper.make_node("Shape", ["d1"], ["shape1"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d2"]),
             helper.make_node("Shape", ["d2"], ["shape2"]),
             helper.make_node("Relu", ["d2"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("shape1", TensorProto.INT64, [4]),
         helper.make_tensor_value_info("shape2", TensorProto.INT64, [4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(0).uniform(-8, 8, (1, 2, 3, 4)).astype(np.float32)

    def run(m):
        return ort.InferenceSession(m.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})

    before = run(model)
    assert shapes_before_dequantize(model) == 2
    g = model.graph
    assert [n.input[0] for n in g.node if n.op_type == "Shape"] == ["q", "q"]
    assert [n.output[0] for n in g.node if n.op_type == "DequantizeLinear"] == ["d2"]
    assert sorted(t.name for t in g.initializer) == ["s", "z"]
    after = run(model)
    assert after[0].tolist() == after[1].tolist() == [1, 2, 3, 4]
    q = np.clip(np.round(x / 0.5) + 10, 0, 255)
    np.testing.assert_allclose(after[2], np.maximum((q - 10) * 0.5, 0))
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_equal_initializers_are_stored_once_and_the_graph_computes_the_same():
    """A hand-built QDQ graph whose two Q → DQ pairs carry their own copies of equal scales and
    zero points (as onnxruntime's quantizer writes them), plus a scale of the same value that is
    also a graph input (a default the caller may override) and a zero point of another type.
    After merging, the four copies of scale 0.5 / zero point 10 (uint8) are two initializers,
    every node reads those, the exposed one and the int8 zero point stay, and onnxruntime gives
    the same outputs — also when the caller overrides the exposed scale."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from trainers.deploy.int8 import shared_initializers

    def init(value, dtype, name):
        return numpy_helper.from_array(np.array(value, dtype), name)

    inits = [init(0.5, np.float32, "s_a"), init(10, np.uint8, "z_a"),
             init(0.5, np.float32, "s_b"), init(10, np.uint8, "z_b"),
             init(0.5, np.float32, "s_in"), init(10, np.int8, "z_i8")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_a", "z_a"], ["qa"]),
             helper.make_node("DequantizeLinear", ["qa", "s_a", "z_a"], ["ya"]),
             helper.make_node("QuantizeLinear", ["x", "s_b", "z_b"], ["qb"]),
             helper.make_node("DequantizeLinear", ["qb", "s_b", "z_b"], ["yb"]),
             helper.make_node("QuantizeLinear", ["x", "s_in", "z_i8"], ["qc"]),
             helper.make_node("DequantizeLinear", ["qc", "s_in", "z_i8"], ["yc"])]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "g", [vi("x", TensorProto.FLOAT, [2, 3]), vi("s_in", TensorProto.FLOAT, [])],
        [vi(n, TensorProto.FLOAT, [2, 3]) for n in ("ya", "yb", "yc")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.array([[-3.2, 0.1, 0.74], [7.9, 130.0, -1.26]], np.float32)

    def run(m, **feeds):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]
                                    ).run(None, {"x": x, **feeds})

    before = run(model)
    before_override = run(model, s_in=np.array(0.25, np.float32))
    assert shared_initializers(model) == 2
    assert sorted(t.name for t in model.graph.initializer) == ["s_a", "s_in", "z_a", "z_i8"]
    assert [list(n.input[1:]) for n in model.graph.node] == [
        ["s_a", "z_a"]] * 4 + [["s_in", "z_i8"]] * 2
    after = run(model)
    # uint8 grid of step 0.5 around 10: -3.2 → 4 → -3.0; 130 saturates at 255 → 122.5
    np.testing.assert_allclose(after[0], [[-3.0, 0.0, 0.5], [8.0, 122.5, -1.5]])
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(before_override, run(model, s_in=np.array(0.25, np.float32))):
        np.testing.assert_array_equal(a, b)
    assert shared_initializers(model) == 0  # nothing left to merge
