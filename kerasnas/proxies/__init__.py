"""Zero-cost proxies: scores of an untrained model that predict how well it will train.

`score(model, x, y)` computes the proxies of `PROXIES` on one batch (higher
= predicted better), each proxy also has its own function, and `vote`
combines several architectures' scores by their mean rank (Abdelfattah et
al., ICLR 2021, "Zero-Cost Proxies for Lightweight NAS"):

```python
space = kn.spaces.NASBench201Space(num_classes=10, input_shape=(28, 28, 1))
rng = np.random.default_rng(0)
scores = [kn.proxies.score(space.build_model(space.sample(rng)), x, y) for _ in range(10)]
combined = kn.proxies.vote(scores)  # synflow, jacob_cov and snip vote
```

The code is organised as `measures` (the proxies of the weights and of a
batch, and `score`), `counts` (`params`, `flops`), `ranking` (`vote`),
`architectures` (a space's architecture scored untrained, as the
strategies do) and `_model` (checks of the inputs, the batch, reading the
model's graph).
"""

from kerasnas.proxies.counts import flops, params
from kerasnas.proxies.measures import (
    PROXIES,
    grad_norm,
    jacob_cov,
    meco,
    naswot,
    score,
    snip,
    synflow,
    zico,
)
from kerasnas.proxies.ranking import VOTE_PROXIES, vote

__all__ = [
    "PROXIES",
    "VOTE_PROXIES",
    "flops",
    "grad_norm",
    "jacob_cov",
    "meco",
    "naswot",
    "params",
    "score",
    "snip",
    "synflow",
    "vote",
    "zico",
]
