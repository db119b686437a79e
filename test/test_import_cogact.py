"""The CogACT importer on a synthetic, scaled-down checkpoint with CogACT's key layout."""
import re

import torch

from molevla_ros.model.import_cogact import import_cogact
from molevla_ros.model.io import load_model
from molevla_ros.model.mole_vla import MoLeVLA



def cogact_layout(model: MoLeVLA) -> dict:
    """Our weights written the way CogACT's training code saves them (written independently of the importer)."""
    groups = {"projector": {}, "llm_backbone": {}, "action_model": {}, "vision_backbone": {}}
    for k, v in model.state_dict().items():
        if k.startswith("projector."):
            i, rest = re.match(r"projector\.(\d+)\.(.*)", k).groups()
            groups["projector"][f"fc{int(i) // 2 + 1}.{rest}"] = v.clone()
        elif k.startswith("llm."):
            groups["llm_backbone"]["llm.model." + k.removeprefix("llm.")] = v.clone()
        elif k.startswith("head."):
            groups["action_model"]["net." + k.removeprefix("head.")] = v.clone()
    groups["llm_backbone"]["llm.lm_head.weight"] = torch.randn(64, 32)
    groups["action_model"]["net.history_embedder.linear.weight"] = torch.randn(32, 7)
    groups["vision_backbone"]["featurizer.blocks.0.attn.qkv.weight"] = torch.randn(12, 4)
    groups["vision_backbone"]["fused_featurizer.blocks.0.attn.qkv.weight"] = torch.randn(12, 4)
    return {"model": groups}


def test_import_maps_every_cogact_weight(tmp_path, tiny):
    torch.manual_seed(0)
    source = MoLeVLA(tiny())
    torch.save(cogact_layout(source), tmp_path / "cogact.pt")
    report = import_cogact(tmp_path / "cogact.pt", tiny(), tmp_path / "imported")
    assert len(report["dropped"]) == 2 and len(report["vision"]) == 2
    assert not any(k.startswith(("llm.", "projector.", "head.")) for k in report["initialised"])
    assert any(k.startswith("router.") for k in report["initialised"]), "the router is new in MoLe-VLA"
    imported = load_model(tmp_path / "imported")
    ours = source.state_dict()
    for k, v in imported.state_dict().items():
        if k.startswith(("llm.", "projector.", "head.")):
            torch.testing.assert_close(v, ours[k], msg=k)
    assert (tmp_path / "imported" / "vision_backbone.safetensors").exists()


def test_import_rejects_mismatched_config(tmp_path, tiny):
    torch.manual_seed(0)
    torch.save(cogact_layout(MoLeVLA(tiny())), tmp_path / "cogact.pt")
    bigger = tiny()
    bigger.llm.intermediate = 128
    try:
        import_cogact(tmp_path / "cogact.pt", bigger, tmp_path / "x")
    except ValueError as e:
        assert "does not fit" in str(e)
    else:
        raise AssertionError("a config that does not match the checkpoint must be refused")
