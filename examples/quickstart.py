"""Quickstart: a 10-trial random architecture search on the embedded digits data.

Run with `make demo` (or `python examples/quickstart.py`). It searches the
NASNet cell space, prints one line per trial, then evaluates the best model on
the held-out test split, draws its cells and exports it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import kerasnas as kn  # noqa: E402

MAX_TRIALS = int(os.environ.get("KERASNAS_DEMO_TRIALS", "10"))
OUT = os.environ.get("KERASNAS_DEMO_DIR", "kerasnas_runs")


def main() -> None:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load("digits")
    print(
        f"digits: {len(x_train)} train, {len(x_val)} validation, {len(x_test)} test "
        f"images of shape {x_train.shape[1:]}"
    )
    # num_classes and input_shape are taken from the data by fit().
    space = kn.spaces.NASNetSpace(num_blocks=5, num_cells=2, num_reductions=2, filters=32)
    search = kn.Search(
        space,
        strategy="random",
        objective="val_accuracy",
        max_trials=MAX_TRIALS,
        directory=OUT,
        project_name="digits_demo",
        overwrite=True,
        seed=0,
    )
    search.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=5, batch_size=32)

    best = search.best_architectures(1)[0]
    print(f"\nbest architecture {best.hash()[:8]}:")
    for name, cell in best.cells.items():
        ops = [op for op in cell.ops if op not in ("add", "output") and not op.startswith("input")]
        print(f"  {name} cell ops: {', '.join(ops)}")
    print(f"  JSON: {best.to_json()[:100]}...")
    picture = best.plot(os.path.join(OUT, "best_architecture.png"))
    print(f"  drawn to {picture}")

    model = search.best_model()
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"\ntest accuracy of the best model: {test_accuracy:.4f}")
    path = search.export(os.path.join(OUT, "digits_best.keras"))
    print(f"exported to {path} (load it with keras.models.load_model)")


if __name__ == "__main__":
    main()
