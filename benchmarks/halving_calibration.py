"""Halving calibrated without training: successive-halving rules simulated on NAS-Bench-101.

Usage: python benchmarks/halving_calibration.py [--seeds=200] [--budgets=10,30]

`../shared/data/nas-bench-101_20k.csv` holds 20,001 NAS-Bench-101 cells with
their validation accuracy after 4, 12, 36 and 108 epochs of training. For
each rule, `--seeds` searches draw cells at random (a fresh order per seed)
and spend a budget of `B x 108` epochs (`--budgets`: B full trainings)
through kerasnas's own promotion rule (`kerasnas.Halving.next_trial`, the
asynchronous successive halving a search runs, one worker): a new cell
trains `min_epochs`, a promotion the epochs its rung adds, and its score is
the table's accuracy at the rung's total epochs. The search's pick is its
best trial by score at the highest rung any trial reached (a rung's scores
are not comparable with a lower rung's). The baselines train every cell for
a fixed number of epochs (`fixed@E`: no halving).

Per rule and budget it prints the pick's 108-epoch accuracy (mean and
standard error over seeds), how often the pick is in the table's 108-epoch
top 1 % and top 5 %, and the survival rates: of the cells in the table's top
1 % (5 %) that a search drew, the share that reached its last rung. Last, the
rule with the best mean pick at each budget, and whether its lead over the
runner-up is inside two standard errors.

Caveat: a promoted trial in kerasnas continues from its parent's weights; the
table's 36-epoch accuracy is that of a separate 36-epoch training from
scratch (its own learning-rate schedule). The simulation ranks cells as a
cold restart at each rung would.
"""

import argparse
import csv
import statistics
import sys
import types

import numpy as np

import kerasnas as kn
from kerasnas.benchmarks.tabular import shared_data_path
from kerasnas.plan import TrialPlan

FIDELITIES = (4, 12, 36, 108)

# (name, min_epochs, eta): every rung's total epochs is one of the table's lengths.
RULES = (
    ("halving 4-12-36-108 (eta 3)", 4, 3),
    ("halving 12-36-108 (eta 3)", 12, 3),
    ("halving 36-108 (eta 3)", 36, 3),
    ("halving 4-36-108 (eta 9)", 4, 9),
    ("halving 12-108 (eta 9)", 12, 9),
    ("halving 4-108 (eta 27)", 4, 27),
)
FIXED = (4, 12, 36, 108)


class _Store:
    """The part of a `NasOracle` that `Halving.next_trial` reads: finished trials and plans."""

    objective = types.SimpleNamespace(direction="max")

    def __init__(self):
        self.trials: list = []
        self.plans: dict[str, TrialPlan] = {}

    def finished_trials(self):
        return self.trials

    def plan(self, trial_id):
        return self.plans[trial_id]

    def add(self, row, score, plan):
        trial_id = f"{len(self.trials):05d}"
        values = types.SimpleNamespace(values={"row": row})
        self.trials.append(
            types.SimpleNamespace(trial_id=trial_id, score=score, hyperparameters=values)
        )
        self.plans[trial_id] = plan


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r[f"val_acc_{e}ep"]) for e in FIDELITIES] for r in rows])


def simulate(acc, halving, order, budget_epochs):
    """One search: the row it picks, the rows it drew and those that reached its last rung."""
    store, spent, drawn = _Store(), 0, 0
    rungs = halving.rungs
    while True:
        response = halving.next_trial(store)
        if response is None:
            row, rung, epochs = int(order[drawn]), 0, rungs[0]
            drawn += 1
            plan = TrialPlan()
        else:
            row, plan = response["values"]["row"], response["plan"]
            rung, epochs = plan.promotion.rung, plan.promotion.epochs
        if spent + epochs > budget_epochs:
            break
        spent += epochs
        store.add(row, acc[row, FIDELITIES.index(rungs[rung])], plan)
    top = max(kn.oracles.halving.rung(p) for p in store.plans.values())
    last = [t for t in store.trials if kn.oracles.halving.rung(store.plans[t.trial_id]) == top]
    pick = max(last, key=lambda t: t.score).hyperparameters.values["row"]
    reached = {t.hyperparameters.values["row"] for t in last} if top == len(rungs) - 1 else set()
    return pick, set(int(r) for r in order[:drawn]), reached


def fixed(acc, epochs, order, budget_epochs):
    n = budget_epochs // epochs
    rows = order[:n]
    pick = int(rows[np.argmax(acc[rows, FIDELITIES.index(epochs)])])
    return pick, set(int(r) for r in rows), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--budgets", default="10,30")
    args = parser.parse_args()
    path = shared_data_path("nas-bench-101_20k.csv")
    if path is None:
        sys.exit("halving_calibration.py: ../shared/data/nas-bench-101_20k.csv not found")
    acc = load(path)
    final = acc[:, -1]
    top1 = set(np.flatnonzero(final >= np.quantile(final, 0.99)).tolist())
    top5 = set(np.flatnonzero(final >= np.quantile(final, 0.95)).tolist())
    print(
        f"table: {len(acc)} cells, best 108-epoch accuracy {final.max():.4f}, "
        f"top 1 % from {np.quantile(final, 0.99):.4f}, top 5 % from {np.quantile(final, 0.95):.4f}"
    )
    for e in FIDELITIES[:-1]:
        ranks = np.argsort(np.argsort(acc[:, FIDELITIES.index(e)]))
        rho = np.corrcoef(ranks, np.argsort(np.argsort(final)))[0, 1]
        print(f"  Spearman rank correlation of {e}-epoch with 108-epoch accuracy: {rho:.3f}")
    contenders = [
        (name, kn.Halving(max_epochs=108, min_epochs=m, eta=eta)) for name, m, eta in RULES
    ]
    contenders += [(f"fixed@{e} (no halving)", e) for e in FIXED]
    for budget in [int(b) for b in args.budgets.split(",")]:
        print(f"\nbudget: {budget} full trainings ({budget * 108} epochs), {args.seeds} seeds")
        heads = ("pick@108", 15), ("in top1%", 9), ("in top5%", 9), ("surv1%", 7), ("surv5%", 7)
        print(f"{'rule':30s} " + " ".join(f"{h:>{w}s}" for h, w in heads))
        means = []
        for name, rule in contenders:
            picks, t1, t5, s1, s5 = [], 0, 0, [0, 0], [0, 0]
            for seed in range(args.seeds):
                order = np.random.default_rng(seed).permutation(len(acc))
                if isinstance(rule, int):
                    pick, drawn, reached = fixed(acc, rule, order, budget * 108)
                else:
                    pick, drawn, reached = simulate(acc, rule, order, budget * 108)
                picks.append(final[pick])
                t1 += pick in top1
                t5 += pick in top5
                for top, surv in ((top1, s1), (top5, s5)):
                    if reached is not None:  # No rungs without halving.
                        surv[0] += len(drawn & top)
                        surv[1] += len(reached & top)
            mean = statistics.fmean(picks)
            se = statistics.stdev(picks) / len(picks) ** 0.5
            means.append((mean, se, name))
            rate = lambda s: f"{s[1] / s[0]:.2f}" if s[0] else "-"  # noqa: E731
            print(
                f"{name:30s} {mean:.4f} ± {se:.4f} {t1 / args.seeds:9.2f} {t5 / args.seeds:9.2f} "
                f"{rate(s1):>7s} {rate(s5):>7s}"
            )
        means.sort(reverse=True)
        (m1, se1, n1), (m2, se2, n2) = means[0], means[1]
        inside = abs(m1 - m2) <= 2 * (se1**2 + se2**2) ** 0.5
        print(
            f"best at {budget}: {n1} ({m1:.4f}); runner-up {n2} ({m2:.4f}); "
            f"lead {m1 - m2:+.4f}, {'inside' if inside else 'outside'} two standard errors"
        )


if __name__ == "__main__":
    main()
