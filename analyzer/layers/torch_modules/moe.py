"""The torch module for MixtureOfExperts: Mixtral's sparse MoE block with the experts as GatedMLP modules (nn.Linear
each), so that every counter sees each expert's calls on the tokens routed to it. Only the torch export imports it."""

import torch
from torch import nn

from analyzer.layers.torch_modules.transformer import GatedMLP


class MixtureOfExperts(nn.Module):
    """router -> softmax -> top k (renormalized) -> the chosen experts, weighted and summed (MixtralSparseMoeBlock)."""

    def __init__(self, in_features, num_experts, experts_per_token, intermediate_dim, activation="silu",
                 normalize_top_k=True, use_bias=False):
        super().__init__()
        self.top_k, self.normalize_top_k = experts_per_token, normalize_top_k
        self.router = nn.Linear(in_features, num_experts, bias=False)
        self.experts = nn.ModuleList(GatedMLP(in_features, intermediate_dim, in_features, activation, use_bias)
                                     for _ in range(num_experts))

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        weights, chosen = torch.topk(torch.softmax(self.router(flat), dim=-1), self.top_k, dim=-1)
        if self.normalize_top_k:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(flat)
        for index, expert in enumerate(self.experts):
            token, slot = torch.where(chosen == index)
            if token.numel():
                out = out.index_add(0, token, expert(flat[token]) * weights[token, slot, None])
        return out.reshape(x.shape)
