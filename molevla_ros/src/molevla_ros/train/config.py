"""Training options (`molevla train --help` lists them, generated from this dataclass)."""
from __future__ import annotations

from dataclasses import dataclass

from molevla_ros.config_cli import REQUIRED, option

STAGES = ("grounding", "locator", "teacher", "mole", "mole_nokd", "random", "first_k")


@dataclass
class TrainConfig:
    out: str = option(REQUIRED, "run folder; re-running resumes from its checkpoint")
    data: str = option("data/episodes", "training data, comma-separated: folders of `molevla collect` episodes and "
                       "LeRobot datasets (`molevla dataset from-bags`, or any LeRobot v3 dataset at 1 / action_dt "
                       "frames per second)")
    image_key: str = option("", "LeRobot datasets: the camera feature (default: the first observation.images.*)")
    state_key: str = option("observation.state", "LeRobot datasets: the state feature (7 arm joints + 2 fingers)")
    action_key: str = option("action", "LeRobot datasets: the action feature (dx dy dz droll dpitch dyaw gripper, "
                             "base frame, per action_dt)")
    stage: str = option("teacher", "grounding (vision pre-training, before the teacher), locator (goal-locator "
                        "pre-training on the simulator's ground truth; adds one to an --init model), teacher, or a "
                        "routed student: mole, mole_nokd (no CogKD), random, first_k (early exit)",
                        choices=STAGES)
    init: str | None = option(None, "model folder to start from, or a shipped model's name (students start from "
                              "the teacher)")
    reinit: str = option("", "comma-separated parts of the --init model that start afresh (seeded): decoder (the "
                         "Llama stack with its token embeddings, and the cognition token), head, router, proprio (its "
                         "projection); 'decoder,head,router,proprio' trains a new policy on a pretrained vision path, "
                         "text projection and goal locator")
    steps: int = option(3000, "optimiser steps")
    batch: int = option(32, "samples per step")
    lr: float = option(3e-4, "peak learning rate; 100 warm-up steps, then cosine decay to lr / 10 at the last step")
    router_lr: float | None = option(None, "peak learning rate of the STAR router (None: lr). A student's router "
                                     "starts untrained while its layers are the teacher's (docs/model.md "
                                     "'The MoLe-VLA model': 1e-3 vs 3e-5)")
    seed: int = option(0, "seed for initialisation, sampling and augmentation")
    ema: float = option(0.999, "CogKD: the distillation teacher is an EMA of the student's decoder layers with "
                        "this decay")
    cog_weight: float = option(0.5, "CogKD: weight of the cognition-feature distillation loss (routed students)")
    aux_weight: float = option(1.0, "training-only chunk regression from the cognition feature (0 = off)")
    geometry_weight: float = option(0.0, "regression of the goal geometry (train/geometry.py): of the goal locator's "
                                    "points where the model has one, else of the named cube, goal and push start "
                                    "point by a training-only head on the keypoint token; needs episodes recorded "
                                    "with the simulator's ground truth (0 = off; docs/notebook.md 'Why push fails')")
    keep_ratio: float | None = option(None, "override the router keep ratio of the model config")
    mixed_keep: str | None = option(None, "routed students: 'LO,HI' draws the layers kept uniformly from LO..HI at "
                                    "every step (one model for a range of k, e.g. for latency_budget_ms); the "
                                    "saved keep ratio stays the model's")
    depth_prior: float | None = option(None, "router score ramp +p (layer 0) .. -p (last layer); > 0 starts the "
                                       "router at early exit (RouterConfig.depth_prior)")
    gumbel_scale: float | None = option(None, "router training noise (config default 1 = paper; 0 = train on the "
                                        "inference route)")
    balance_weight: float | None = option(None, "router load-balance loss weight (RouterConfig.balance_weight)")
    route_search: int = option(0, "N > 0: train the router on the best of its route and N one-swap variants")
    save_every: int = option(500, "checkpoint every this many steps")
    stop_at: int = option(0, "stop after this many steps with a checkpoint, for a job with a time limit; running "
                          "the same command again resumes (0: run to --steps)")
    accumulate: int = option(1, "micro-batches per process and step: the global batch (--batch) is split into "
                             "processes x accumulate micro-batches")
    precision: str = option("fp32", "bf16: the forward and backward passes under bfloat16 autocast (weights, "
                            "gradients and optimiser state stay fp32)", choices=("fp32", "bf16"))
    activation_checkpointing: bool = option(False, "recompute each decoder layer's activations in the backward "
                                            "pass instead of keeping them (less memory, about a third more compute)")
    freeze_vision: bool = option(False, "keep the vision encoder's weights as they are (CogACT trains with its "
                                 "DINOv2 + SigLIP towers frozen)")
    threads: int = option(0, "torch threads (0: torch's default)")
    wording: str = option("varied", "goal sentences: as recorded (canonical), or a new random wording of each "
                          "sample's goal at every step (varied: model/wordings.py)", choices=("canonical", "varied"))
    shift: int = option(1, "image augmentation: random translation up to this many pixels (the camera is fixed)")
    proprio_noise: float = option(0.0, "proprio augmentation: std (rad) of Gaussian noise on the 7 arm joint angles "
                                  "(0 = off). Makes the arm state too coarse for a shortcut, so goal-relative "
                                  "positions must come from the image (docs/notebook.md 'Why push fails')")
    proprio_dropout: float = option(0.0, "fraction of training samples whose proprio token the decoder may not "
                                    "attend to (teacher stages; 0 = off). The arm state alone predicts the expert "
                                    "along its demonstrated paths, a shortcut that ignores the scene; hidden, the "
                                    "hand's position has to come from the image (docs/notebook.md 'Why push fails': "
                                    "the decoders took it "
                                    "from the patch tokens, not the goal locator's token; "
                                    "with locator_input state the locator's features are hidden with it)")
    patch_dropout: float = option(0.0, "fraction of training samples whose vision encoder tokens the decoder may not "
                                  "attend to (teacher stages; 0 = off; the goal locator's token stays visible). "
                                  "There the scene reaches the decoder only through the locator, so the decoder "
                                  "learns to read it (docs/notebook.md 'Why push fails')")
    locator_blocks: int = option(0, "stage locator: grow the goal locator to this many context blocks (wider view, "
                                 "model/goal_locator.py; new blocks start as the identity, so a trained locator "
                                 "goes on from where it was)")
    locator_roles: bool = option(False, "stage locator: give the goal locator one instruction summary per point "
                                 "(model/goal_locator.py; it starts as the locator was, and learns to tell which "
                                 "colour is the cube's and which the goal's)")
    val: str | None = option(None, "held-out episode folder: open-loop metrics every val_every steps and at the end")
    val_every: int = option(1000, "steps between held-out evaluations")
