"""The search facade (`kerasnas.Search`), its project folder, results and final training.

    facade.py    Search: wires strategy, project, inputs, runner and results
    project.py   the project folder's metadata and the resume checks
    results.py   TrialRecord (one per trial), the Pareto front, the summary table
    retrain.py   training the best networks again for the final model
    options.py   the checks of Search's arguments; the oracle of a strategy name

The pacing helpers that used to live here (`fit_within`, `epochs_within`,
`measure_step_seconds`, `steps_per_epoch`) are in `kerasnas.training`; they
are still importable from here.
"""

from kerasnas.search.facade import Search
from kerasnas.search.project import METADATA, Project, ProjectInUseError
from kerasnas.search.results import TrialRecord
from kerasnas.training.measure import measure_step_seconds, steps_per_epoch
from kerasnas.training.pacing import epochs_within, fit_within

__all__ = [
    "METADATA",
    "Project",
    "ProjectInUseError",
    "Search",
    "TrialRecord",
    "epochs_within",
    "fit_within",
    "measure_step_seconds",
    "steps_per_epoch",
]
