"""CogKD: Cognition Self-Knowledge Distillation of the full-depth teacher's last hidden states (METHOD.md)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cogkd_loss(h_s: torch.Tensor, h_t: torch.Tensor, valid: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
    """Token-of-interest weighted 0.5 * MSE + 0.5 * reverse KL(q_student || p_teacher) over hidden units;
    the batch mean, or one value per sample [B]."""
    d = h_s.shape[-1]
    mse = (h_s - h_t).pow(2).mean(-1)
    log_q, log_p = F.log_softmax(h_s, -1), F.log_softmax(h_t, -1)
    rkl = (log_q.exp() * (log_q - log_p)).sum(-1)
    per_token = 0.5 * mse + 0.5 * rkl
    with torch.no_grad():  # M = softmax(c_t H_s^T / sqrt d) * softmax(c_s H_s^T / sqrt d), renormalised
        neg = torch.finfo(h_s.dtype).min
        a = (h_t[:, -1:] @ h_s.transpose(1, 2)).squeeze(1) / math.sqrt(d)
        b = (h_s[:, -1:] @ h_s.transpose(1, 2)).squeeze(1) / math.sqrt(d)
        m = a.masked_fill(~valid, neg).softmax(-1) * b.masked_fill(~valid, neg).softmax(-1)
        m = m / m.sum(-1, keepdim=True)
    loss = (m * per_token).sum(-1)
    return loss if per_sample else loss.mean()
