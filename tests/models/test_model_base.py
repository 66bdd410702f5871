"""SeparationModel: argument recording, serialize/load round trip, registry and its limits."""

from __future__ import annotations

import json

import pytest
import torch

from bootsep.models import (
    MODELS,
    Chimera,
    DeepClustering,
    MaskInference,
    SeparationModel,
    build_model,
    load_model,
    register_model,
)
from bootsep.models.recurrent import RecurrentStack

F = 17

CONFIGS = [
    ("DeepClustering", dict(num_features=F, hidden_size=4, num_layers=2, embedding_size=3,
                            embedding_activation=("tanh", "unit_norm"), rnn_type="gru")),
    ("MaskInference", dict(num_features=F, num_sources=3, hidden_size=4, num_layers=1,
                           mask_activation="softmax", bidirectional=False)),
    ("Chimera", dict(num_features=F, hidden_size=4, num_layers=2, embedding_size=2, n_mels=5,
                     sample_rate=8000)),
]


def _mag(seed=0):
    return torch.rand(2, 9, F, generator=torch.Generator().manual_seed(seed)) + 1e-3


@pytest.mark.parametrize("name,args", CONFIGS)
def test_serialize_load_identical(name, args, tmp_path):
    torch.manual_seed(1)
    model = build_model(name, args).eval()
    ser = model.serialize()
    assert ser["class"] == f"bootsep.models.recurrent.{name}"
    assert json.loads(json.dumps(ser["args"]))["hidden_size"] == 4
    assert set(ser["args"]) == set(type(model)(**args).init_args)
    torch.manual_seed(99)  # a fresh build would have different weights
    other = build_model(name, args).eval()
    loaded = load_model(ser)
    assert not loaded.training and type(loaded) is type(model)
    mag = _mag()
    ref, got, diff = model(mag), loaded(mag), other(mag)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0)
    assert any((diff[k] - ref[k]).abs().max() > 1e-4 for k in ref)
    path = tmp_path / "m.pth"
    torch.save(ser, path)
    from_file = load_model(torch.load(path, weights_only=True))
    for k in ref:
        torch.testing.assert_close(from_file(mag)[k], ref[k], rtol=0, atol=0)


def test_args_are_json_lists_and_reload_with_lists():
    m = DeepClustering(F, hidden_size=3, num_layers=1, embedding_size=2)
    assert m.init_args["embedding_activation"] == ["sigmoid", "unit_norm"]
    m2 = load_model(m.serialize())
    assert m2.embedding_head.activation == ("sigmoid", "unit_norm")


def test_build_model_names_and_paths():
    assert set(MODELS) >= {"DeepClustering", "MaskInference", "Chimera"}
    a = build_model("Chimera", {"num_features": F, "hidden_size": 3, "num_layers": 1})
    b = build_model("bootsep.models.recurrent.Chimera",
                    {"num_features": F, "hidden_size": 3, "num_layers": 1})
    assert type(a) is type(b) is Chimera
    with pytest.raises(ValueError, match="unknown model class"):
        build_model("Chimaera", {})
    with pytest.raises(ValueError, match="unknown model class"):
        build_model("bootsep.models.recurrent.Nope", {})


@pytest.mark.parametrize("path", ["torch.nn.Linear", "os.system", "bootsep.losses.Foo",
                                  "bootsep.modelsX.recurrent.Chimera"])
def test_refuses_classes_outside_package(path):
    with pytest.raises(ValueError, match="refusing"):
        load_model({"class": path, "args": {}, "state_dict": {}})
    with pytest.raises(ValueError, match="refusing"):
        register_model("Evil", path)


def test_refuses_non_model_class_in_package():
    with pytest.raises(ValueError, match="not a SeparationModel"):
        build_model("bootsep.models.recurrent.RecurrentStack", {"input_size": 3})
    assert RecurrentStack  # the class exists; it is just not a model


def test_state_dict_mismatch_is_an_error():
    ser = MaskInference(F, hidden_size=4, num_layers=1).serialize()
    ser["args"]["hidden_size"] = 5
    with pytest.raises(RuntimeError):
        load_model(ser)
    with pytest.raises(KeyError, match="state_dict"):
        load_model({"class": "Chimera", "args": {}})


class _Forgetful(MaskInference):
    def __init__(self, num_features: int, gain: float = 2.0):
        super().__init__(num_features, hidden_size=3, num_layers=1)
        self.gain = gain


class _Recorded(MaskInference):
    def __init__(self, num_features: int, gain: float = 2.0):
        super().__init__(num_features, hidden_size=3, num_layers=1)
        self.gain = gain
        self._record_args(locals())


def test_subclass_must_record_args_and_lives_outside_package():
    with pytest.raises(TypeError, match="_record_args"):
        _Forgetful(F).serialize()
    ser = _Recorded(F, gain=3.0).serialize()
    assert ser["args"] == {"num_features": F, "gain": 3.0}
    with pytest.raises(ValueError, match="refusing"):
        load_model(ser)  # defined in a test module, not in bootsep.models


def test_non_json_arg_rejected():
    class Bad(SeparationModel):
        def __init__(self, thing=None):
            super().__init__()
            self._record_args(locals())

    with pytest.raises(TypeError, match="JSON"):
        Bad(thing=torch.zeros(2))
    assert Bad(thing=[1, (2, 3)]).init_args == {"thing": [1, [2, 3]]}


def test_serialize_copies_state_to_cpu():
    m = Chimera(F, hidden_size=3, num_layers=1, embedding_size=2)
    ser = m.serialize()
    ser["state_dict"]["mask_head.linear.bias"] += 1.0
    assert m.mask_head.linear.bias.abs().sum() == 0
    assert all(v.device.type == "cpu" for v in ser["state_dict"].values())
