"""CogACT's vision featurizer (inherited from Prismatic's "dinosiglip-vit-so-224px"): DINOv2 ViT-L/14 with
4 registers and SigLIP SO400M/14, both at 224 px, built with timm (no pretrained download: the weights come
from the checkpoint's `vision_backbone`, keys `dino_featurizer.*` and `siglip_featurizer.*`).

Each tower returns the patch tokens of its second-to-last block (prefix tokens dropped, no final norm); the
two are concatenated per patch: [B, 256, 1024 + 1152 = 2176]. Each tower normalises the image its own way
(DINOv2: ImageNet mean/std; SigLIP: 0.5/0.5), so both read the same resized [0, 1] image. Frozen.
"""
from __future__ import annotations

import torch
from torch import nn

from molevla_ros.model.config import VisionConfig

# Per-tower input normalisation (timm's pretrained configs of these two models).
DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SIGLIP_MEAN, SIGLIP_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def build_tower(name: str, image_size: int, overrides: dict) -> nn.Module:
    """A timm ViT without classifier, random weights; `overrides` e.g. {"depth": 2, "embed_dim": 64}."""
    try:
        import timm
    except ImportError as e:  # the CogACT path's dependency (pip install molevla_ros[cogact])
        raise ImportError(f"the DINOv2 + SigLIP featurizer needs timm ({e}); pip install 'molevla_ros[cogact]'") from e
    return timm.create_model(name, pretrained=False, num_classes=0, img_size=image_size, **overrides)


class DinoSigLIP(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.dino_featurizer = build_tower(cfg.dino_model, cfg.image_size, cfg.dino_kwargs)
        self.siglip_featurizer = build_tower(cfg.siglip_model, cfg.image_size, cfg.siglip_kwargs)
        dims = self.dino_featurizer.embed_dim + self.siglip_featurizer.embed_dim
        if dims != cfg.feature_dim:
            raise ValueError(f"DINOv2 + SigLIP give {dims} features per patch, config says {cfg.feature_dim}")
        for name, mean, std in (("dino", DINO_MEAN, DINO_STD), ("siglip", SIGLIP_MEAN, SIGLIP_STD)):
            self.register_buffer(f"{name}_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
            self.register_buffer(f"{name}_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "DinoSigLIP":
        return super().train(False)  # frozen: dropout / drop-path never active

    @staticmethod
    def penultimate_patches(tower: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return tower.get_intermediate_layers(x, n=[len(tower.blocks) - 2])[0]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: resized RGB in [0, 1], [B, 3, S, S] -> patch features [B, (S / 14)^2, 2176]."""
        dino = self.penultimate_patches(self.dino_featurizer, (pixels - self.dino_mean) / self.dino_std)
        siglip = self.penultimate_patches(self.siglip_featurizer, (pixels - self.siglip_mean) / self.siglip_std)
        return torch.cat([dino, siglip], dim=2)
