"""SGD with torch.optim.SGD's arithmetic and state_dict layout, without torch.optim's start-up cost.

torch.optim's Optimizer imports torch._dynamo (the compiler stack) the first
time any of its methods runs, which takes 1.4 s on the development machine:
a sixth of a whole LeNet epoch. d2l's recipe is plain SGD, so specc runs
SGD itself: the same operations in the same order as torch.optim.SGD
(`p -= lr * g`, after `g += weight_decay * p` and the momentum buffer
`b = momentum * b + g`, which starts as a copy of the first gradient), so a
run's weights are bitwise those torch.optim.SGD gives (tested), and the same
state_dict, so checkpoints written with either load into the other. Adam and
AdamW stay torch.optim's.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

# The keys of torch.optim.SGD's param_groups, with the values specc's recipes never change.
FIXED_SETTINGS = {"dampening": 0, "nesterov": False, "maximize": False, "foreach": None,
                  "differentiable": False, "fused": None}


class SGD:
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.param_groups = [{"params": self.params, "lr": lr, "momentum": momentum,
                              "weight_decay": weight_decay, **FIXED_SETTINGS}]
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        pairs = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        if not pairs:
            return
        params = [p for _, p in pairs]
        grads = [p.grad for p in params]
        if weight_decay:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        if momentum:
            grads = self._momentum(pairs, grads, momentum)
        torch._foreach_add_(params, grads, alpha=-lr)

    def _momentum(self, pairs, grads: list[torch.Tensor], momentum: float) -> list[torch.Tensor]:
        """The buffers after `b = momentum * b + g` (a copy of g at the first step): the step's direction."""
        fresh = [self.buffers[i] is None for i, _ in pairs]
        if not any(fresh):
            bufs = [self.buffers[i] for i, _ in pairs]
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, grads, alpha=1.0)
            return bufs
        for (i, _), grad in zip(pairs, grads):
            if self.buffers[i] is None:
                self.buffers[i] = grad.detach().clone()
            else:
                self.buffers[i].mul_(momentum).add_(grad, alpha=1.0)
        return [self.buffers[i] for i, _ in pairs]

    # --- torch.optim.SGD's state_dict layout ---------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        state = {i: {"momentum_buffer": b} for i, b in enumerate(self.buffers) if b is not None}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Raises ValueError when the state does not fit these parameters (as torch.optim does)."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the optimizer state is for other parameters "
                             f"({sum(len(g['params']) for g in groups)} instead of {len(self.params)})")
        buffers: list[torch.Tensor | None] = [None] * len(self.params)
        for index, entry in state_dict["state"].items():
            buf, param = entry["momentum_buffer"], self.params[int(index)]
            if tuple(buf.shape) != tuple(param.shape):
                raise ValueError(f"momentum buffer {index} is {tuple(buf.shape)} but its parameter is "
                                 f"{tuple(param.shape)}")
            buffers[int(index)] = buf.to(device=param.device, dtype=param.dtype).clone()
        settings = {k: v for k, v in groups[0].items() if k != "params"}
        self.param_groups[0].update(settings)
        self.buffers = buffers
