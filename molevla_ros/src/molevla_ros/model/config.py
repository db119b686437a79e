"""MoLe-VLA configuration: one dataclass tree, saved as config.json next to the weights.

`small()` is the model trained here (MiniLM text features; the shipped mole_small predates them and reads hashed
words, `small("words")`); `cogact_base()` describes the paper's CogACT-Base stack
(DINOv2 ViT-L/14 + SigLIP SO400M/14 at 224 px, 4096-d projector, Llama-2-7B, DiT-B) so every code path
can be exercised at that scale (random weights; no checkpoint can be downloaded here).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from molevla_ros.control.chunk_executor import BLENDS
from molevla_ros.inputs.images import FILTERS
from molevla_ros.robot_profile import load as load_profile


@dataclass
class VisionConfig:
    kind: str = "patch_cnn"  # "patch_cnn" (trained from scratch here) or "dinov2_siglip" (CogACT; imported)
    image_size: int = 96
    patch_size: int = 12
    feature_dim: int = 128  # per-patch feature size fed to the projector (2176 for DINOv2 + SigLIP)
    film: bool = False  # patch_cnn only: instruction-conditioned features (FiLM, as in RT-1's image tokenizer)
    keypoints: int = 0  # patch_cnn only: spatial-softmax keypoints (x, y per map) in one extra vision token
    # patch_cnn only: the goal locator (model/goal_locator.py), one more vision token after the encoder's: where the
    # named cube and its goal are on the table
    locator: bool = False
    # where the locator's features enter the decoder: "token" (a vision token of their own) or "state" (added to the
    # proprio token, which a trained decoder already reads)
    locator_input: str = "token"
    locator_blocks: int = 0  # context blocks in the locator (model/goal_locator.py ContextBlock; 0 = the first design)
    locator_roles: bool = False  # the locator's FiLM also reads one attention-pooled instruction summary per point
    resize: str = "bilinear"  # image resize to image_size x image_size (antialiased): bilinear or bicubic
    # dinov2_siglip only: the two timm towers (Prismatic's "dinosiglip-vit-so-224px") and keyword overrides
    # passed to timm.create_model (depth, embed_dim, ... : reduced towers for tests; {} = the real sizes)
    dino_model: str = "vit_large_patch14_reg4_dinov2"
    siglip_model: str = "vit_so400m_patch14_siglip_224"
    dino_kwargs: dict = field(default_factory=dict)
    siglip_kwargs: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        """The patch encoder's tokens (patches, then the keypoint token)."""
        return (self.image_size // self.patch_size) ** 2 + (1 if self.keypoints else 0)

    @property
    def decoder_tokens(self) -> int:
        """Vision tokens the decoder reads: the encoder's, then the goal locator's."""
        return self.n_tokens + (1 if self.locator and self.locator_input == "token" else 0)


@dataclass
class LLMConfig:
    hidden: int = 128
    layers: int = 8
    heads: int = 4
    kv_heads: int = 4
    intermediate: int = 256
    vocab: int = 512  # PAD, BOS + 510 hashed word buckets (the "words" tokenizer; "minilm" uses PAD and BOS only)
    # "minilm": frozen pretrained MiniLM token features, projected (the small simulator model); "words": hashed
    # words (older small models); "cogact": the model folder's own tokenizer/ (Llama-2, loaded with
    # transformers) and CogACT's prompt, the cognition feature read at its final EOS token
    tokenizer: str = "words"
    max_text: int = 16  # text positions (right-padded): words / wordpieces, or CogACT's whole prompt after BOS
    bos_id: int = 1
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5


@dataclass
class RouterConfig:
    keep_ratio: float = 0.5  # fraction of LLM layers each step runs
    proj_dim: int = 64  # shared projection of input embeddings (1024 in the paper)
    spatial_hidden: int = 64  # spatial MLP width (512 in the paper)
    temporal_heads: int = 4
    temporal_ff: int = 128
    use_proprio: bool = True  # extension: joint state joins the temporal branch
    gumbel_tau: float = 1.0
    # Scale of the Gumbel noise added to the logits in training (1 = the paper). Noise reorders the top-k, so
    # at 1 a small router trains on routes it will not run at inference; 0 trains on the inference route.
    gumbel_scale: float = 1.0
    balance_weight: float = 0.1
    # Fixed score ramp added to the learned scores, from +depth_prior (layer 0) to -depth_prior (last layer).
    # 0 = the paper's router; > 0 (ours) starts a freshly initialised router at early exit (layers 0..k-1).
    depth_prior: float = 0.0

    def keep(self, n_layers: int) -> int:
        return max(1, min(n_layers, int(round(self.keep_ratio * n_layers))))


@dataclass
class ActionHeadConfig:
    width: int = 128
    depth: int = 3
    heads: int = 4
    horizon: int = 16
    action_dim: int = 7
    train_steps: int = 100  # DDPM steps, squaredcos_cap_v2 schedule
    infer_steps: int = 10  # DDIM steps (eta 0)
    cfg_scale: float = 1.5
    cond_dropout: float = 0.1
    repeats: int = 4  # noise samples per example in training (8 in the paper)
    # DDIM timesteps: "linspace" (train_steps-1 .. 0, evenly) or "stride" (CogACT's respacing: 90, 80, .., 0)
    ddim_schedule: str = "linspace"
    clip_denoised: bool = True  # clamp each step's x0 estimate to [-1, 1] (CogACT: False, clipped at the end)


@dataclass
class ActionSpec:
    """How the head's normalised output becomes robot actions (the model's side of the policy contract)."""

    names: tuple[str, ...] = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
    frame: str = "base"  # deltas are expressed in the robot base frame
    gripper_index: int = 6
    gripper_threshold: float = 0.5  # gripper open (1) where the value >= threshold, else closed (0)
    # "robot": threshold the unnormalised value (the small model); "normalized": threshold the head's [-1, 1]
    # output before unnormalising, and leave the gripper unscaled (CogACT / OpenVLA statistics, mask False)
    gripper_threshold_on: str = "robot"


@dataclass
class DeployHints:
    """How the model is meant to be run, where it differs from the nodes' YAML defaults (written by the importer;
    molevla_ros.model_hints turns them into node parameters at launch, below the operator's own settings)."""

    control_hz: float = 0.0  # policy steps per second (CogACT: one per executed action); 0: the policy's YAML
    blend: str = ""  # executor chunk blending (CogACT: "adaptive"); "": the executor's YAML
    ensemble_window: int = 0  # chunks blended per action (CogACT: 7 on Bridge, 2 on the Google robot); 0: YAML


# The string fields a model's code branches on, and what each may be.
CHOICES = {("vision", "kind"): ("patch_cnn", "dinov2_siglip"), ("vision", "locator_input"): ("token", "state"),
           ("vision", "resize"): FILTERS, ("llm", "tokenizer"): ("words", "minilm", "cogact"),
           ("action_head", "ddim_schedule"): ("linspace", "stride"), ("actions", "frame"): ("base",),
           ("actions", "gripper_threshold_on"): ("robot", "normalized"),
           ("deploy", "blend"): ("", *BLENDS)}


@dataclass
class MoLeConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    router: RouterConfig = field(default_factory=RouterConfig)
    action_head: ActionHeadConfig = field(default_factory=ActionHeadConfig)
    projector_dims: tuple[int, ...] = (512, 128)  # hidden sizes after vision features; last = llm.hidden
    proprio_dim: int = 9  # 7 arm joints + 2 fingers
    proprio_fk: bool = False  # add the Panda fingertip position (forward kinematics of joints 1-7)
    action_dt: float = 0.1  # seconds between consecutive actions (the training data's control period)
    actions: ActionSpec = field(default_factory=ActionSpec)
    router_trained: bool = True  # False for an imported CogACT: its backends run full depth until MoLe fine-tuning
    # The state the model reads, by joint name and in its input order (the robot profile's joints map onto these in
    # order, arm then fingers), and the camera it reads; CogACT reads no state.
    # Default: the simulated robot the shipped models are trained on (robots/panda_sim.yaml).
    state_joints: tuple[str, ...] = field(default_factory=lambda: load_profile("panda_sim").joints)
    camera: str = "main"
    deploy: DeployHints = field(default_factory=DeployHints)

    def __post_init__(self) -> None:
        if self.proprio_token and len(self.state_joints) != self.proprio_dim:
            raise ValueError(f"state_joints names {len(self.state_joints)} joints, proprio_dim is {self.proprio_dim}")
        for (part, name), allowed in CHOICES.items():  # a typo would otherwise run another model than written
            value = getattr(getattr(self, part), name)
            if value not in allowed:
                raise ValueError(f"{part}.{name} is {value!r}; one of {', '.join(map(repr, allowed))}")
        a = self.actions
        if len(a.names) != self.action_head.action_dim or not 0 <= a.gripper_index < len(a.names):
            raise ValueError(f"actions: {len(a.names)} names with gripper_index {a.gripper_index} for an action head "
                             f"of {self.action_head.action_dim} dimensions")
        if not self.action_dt > 0:
            raise ValueError(f"action_dt is {self.action_dt}; it must be > 0 s")

    @property
    def proprio_token(self) -> bool:
        """The small model reads the joint state as one token; CogACT has no proprio input."""
        return self.llm.tokenizer != "cogact"

    @property
    def sequence_length(self) -> int:
        """Backbone positions: BOS, vision tokens, text (+ proprio and cognition tokens for the small model)."""
        return (3 if self.proprio_token else 1) + self.vision.decoder_tokens + self.llm.max_text

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "MoLeConfig":
        """ValueError naming the file for a config this version cannot read (not JSON, a missing section, an unknown
        field, e.g. from a newer version)."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"{path}: not a model config this version reads ({type(e).__name__}: {e})") from None

    @classmethod
    def from_dict(cls, d: dict) -> "MoLeConfig":
        return cls(vision=VisionConfig(**d["vision"]), llm=LLMConfig(**d["llm"]), router=RouterConfig(**d["router"]),
                   action_head=ActionHeadConfig(**d["action_head"]), projector_dims=tuple(d["projector_dims"]),
                   proprio_dim=d["proprio_dim"], proprio_fk=d.get("proprio_fk", False), action_dt=d["action_dt"],
                   actions=ActionSpec(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in d.get("actions", {}).items()}),
                   router_trained=d.get("router_trained", True), deploy=DeployHints(**d.get("deploy", {})),
                   **{k: tuple(d[k]) if k == "state_joints" else d[k] for k in ("state_joints", "camera") if k in d})


def small(tokenizer: str = "minilm") -> MoLeConfig:
    """The small simulator model's configuration (MiniLM text features; "words" for the older hashed words)."""
    llm = LLMConfig(tokenizer="minilm", vocab=2, max_text=24) if tokenizer == "minilm" else LLMConfig()
    return MoLeConfig(vision=VisionConfig(film=True, keypoints=32), llm=llm, proprio_fk=True)


def cogact_base(layers: int = 32) -> MoLeConfig:
    """CogACT-Base sizes (METHOD.md). `layers` < 32 keeps the layer size but fits smaller memory."""
    return MoLeConfig(
        vision=VisionConfig(kind="dinov2_siglip", image_size=224, patch_size=14, feature_dim=2176, resize="bicubic"),
        llm=LLMConfig(hidden=4096, layers=layers, heads=32, kv_heads=32, intermediate=11008, vocab=32064,
                      tokenizer="cogact", max_text=64),
        router=RouterConfig(proj_dim=1024, spatial_hidden=512, temporal_heads=8, temporal_ff=2048, use_proprio=False),
        action_head=ActionHeadConfig(width=768, depth=12, heads=12, repeats=8, ddim_schedule="stride",
                                     clip_denoised=False),
        projector_dims=(8704, 4096, 4096),
        actions=ActionSpec(gripper_threshold_on="normalized"), router_trained=False,
    )
