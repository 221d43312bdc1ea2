"""Golden fixtures for the optimizers: ten steps of Adam, AdamW and SGD on a tiny MLP.

The model is Linear(4, 5) -> ReLU -> Linear(5, 1), the loss the mean squared error over a
fixed batch of 6. Every optimizer starts from the same weights. The file holds the batch,
the initial parameters, the loss before each step and the parameters after each step.

Parameters are written in piano's layout: a Linear weight as [in, out], the transpose of
PyTorch's [out, in], and a bias as [1, out]. Names are piano's: "l1.weight", "l2.bias", ...
"""
import torch

from fixture_io import write_fixture

STEPS = 10
OPTIMIZERS = {
    # Adam's weight decay is L2 (added to the gradient); AdamW's is decoupled.
    "adam": lambda params: torch.optim.Adam(params, lr=0.01, weight_decay=0.01),
    "adamw": lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.01),
    "sgd": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
}


def make_model(initial):
    """The MLP holding copies of `initial`, PyTorch's (weight, bias, weight, bias)."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1)).to(torch.float64)
    with torch.no_grad():
        for p, value in zip(model.parameters(), initial):
            p.copy_(value)
    return model


def piano_parameters(model):
    """(name, matrix) in piano's layout for the two Linear layers: copies, since the
    optimizer keeps changing the parameters in place until the file is written."""
    l1, l2 = model[0], model[2]
    return [
        ("l1.weight", l1.weight.T.detach().clone()),
        ("l1.bias", l1.bias.reshape(1, -1).detach().clone()),
        ("l2.weight", l2.weight.T.detach().clone()),
        ("l2.bias", l2.bias.reshape(1, -1).detach().clone()),
    ]


def write(out_dir):
    generator = torch.Generator().manual_seed(20240611)
    x = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    y = torch.randn(6, 1, generator=generator, dtype=torch.float64)
    shapes = [(5, 4), (5,), (1, 5), (1,)]
    initial = [torch.randn(shape, generator=generator, dtype=torch.float64) * 0.5 for shape in shapes]

    named = [("x", x), ("y", y)]
    named += [(f"init.{name}", value) for name, value in piano_parameters(make_model(initial))]
    for label, make_optimizer in OPTIMIZERS.items():
        model = make_model(initial)
        optimizer = make_optimizer(model.parameters())
        losses = []
        for step in range(1, STEPS + 1):
            optimizer.zero_grad()
            loss = torch.mean((model(x) - y) ** 2)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            named += [(f"{label}.step{step}.{name}", value) for name, value in piano_parameters(model)]
        named.append((f"{label}.loss", torch.tensor(losses)))
    write_fixture(out_dir / "optim_mlp.txt", named)

