"""The search facade (`kerasnas.Search`), its project folder, results and final training.

facade.py    Search: wires strategy, project, inputs, runner and results
project.py   the project folder's metadata and the resume checks
results.py   TrialRecord (one per trial), the Pareto front, the summary table
retrain.py   training the best networks again for the final model
options.py   the checks of Search's arguments; the oracle of a strategy name
"""

from kerasnas.search.facade import Search
from kerasnas.search.project import METADATA, Project
from kerasnas.search.results import TrialRecord

__all__ = [
    "METADATA",
    "Project",
    "Search",
    "TrialRecord",
]
