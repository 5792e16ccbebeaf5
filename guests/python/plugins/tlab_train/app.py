"""`tlab-train`: the "Complete Example" of the Transformer Lab Lab SDK
documentation, run on labhost with only the changes the sandbox forces,
plus the calls real Transformer Lab scripts use beyond it (`list_models`,
`get_model`, `list_datasets`, `get_dataset`, `get_secret`, `lab.job`,
`lab.experiment`, `update_progress(progress, metrics=..., step=...)`,
`save_artifact(..., type="evals")`).

The changes, each marked `# labhost:` below:
- no pandas (native wheels do not run in a component): the eval table is a
  dict of columns, which `save_artifact(type="eval")` takes as a DataFrame;
- the checkpoint and model directories get a file each (the doc's `# ...
  training code ...` would write them);
- `WitWorld = lab.export(...)` instead of `if __name__ == "__main__":`.
"""

import json
import os

from lab import lab


def train_model():
    """Complete training script using Lab SDK"""

    # 1. Initialize
    lab.init(experiment_id="my_training_experiment")

    # 2. Set configuration
    config = {
        "model_name": "gpt2",
        "dataset": "my_dataset",
        "learning_rate": 2e-5,
        "num_epochs": 3,
        "batch_size": 8
    }
    lab.set_config(config)
    lab.log("Configuration set")
    lab.log(f"Job {lab.job.id} in experiment {lab.experiment.name}")

    # Models and datasets of the workspace (undocumented, commonly used).
    models = lab.list_models()
    lab.log(f"Found {len(models)} models in workspace")
    for model in models:
        lab.log(f"  - {model['model_id']}: {model.get('name', 'N/A')}")
    try:
        parent = lab.get_model(config["model_name"])
        lab.log(f"Parent model directory: {parent.get_dir()}")
    except FileNotFoundError:
        lab.log(f"No local model {config['model_name']}: starting from scratch")
    datasets = lab.list_datasets()
    lab.log(f"Found {len(datasets)} datasets in workspace")
    try:
        dataset = lab.get_dataset(config["dataset"])
        lab.log(f"Dataset {dataset['dataset_id']}")
    except FileNotFoundError:
        lab.log(f"No dataset {config['dataset']}: using built-in samples")
    token = lab.get_secret("HF_TOKEN")
    lab.log(f"Hub token loaded ({len(token)} characters): {token}")

    # 3. Load data
    lab.log("Loading dataset...")
    # ... load dataset ...
    lab.update_progress(10)

    # 4. Training loop
    lab.log("Starting training...")
    loss = 2.0
    for epoch in range(config["num_epochs"]):
        # ... training code ...
        loss = loss / 2

        # Save checkpoint
        if (epoch + 1) % 2 == 0:
            checkpoint_dir = f"./checkpoints/epoch_{epoch + 1}"
            os.makedirs(checkpoint_dir, exist_ok=True)  # labhost: the training code writes it
            with open(f"{checkpoint_dir}/state.json", "w") as f:
                json.dump({"epoch": epoch + 1, "loss": loss}, f)
            lab.save_checkpoint(checkpoint_dir, f"epoch_{epoch + 1}")
            lab.log(f"Saved checkpoint for epoch {epoch + 1}")

        # Update progress
        progress = int((epoch + 1) / config["num_epochs"] * 100)
        lab.update_progress(progress, metrics={"loss": loss}, step=epoch + 1)

    # 5. Save model
    model_dir = "./output/final_model"
    os.makedirs(model_dir, exist_ok=True)  # labhost: the training code writes it
    with open(f"{model_dir}/weights.json", "w") as f:
        json.dump({"loss": loss}, f)
    saved_model_path = lab.save_model(
        model_dir,
        name="trained_model",
        architecture="GPT2LMHeadModel",
        parent_model="gpt2"
    )
    lab.log(f"Model saved: {saved_model_path}")

    # 6. Run evaluation
    lab.log("Running evaluation...")
    eval_results = {  # labhost: a dict of columns instead of pd.DataFrame
        "input": ["test input 1", "test input 2"],
        "output": ["output 1", "output 2"],
        "expected_output": ["expected 1", "expected 2"],
        "score": [1.0, 0.8]
    }

    eval_path = lab.save_artifact(
        eval_results,
        name="eval_results.csv",
        type="evals"
    )
    lab.log(f"Evaluation results saved: {eval_path}")

    # 7. Save additional artifacts
    summary = {"final_loss": 0.15, "accuracy": 0.92}
    import json as _json
    with open("summary.json", "w") as f:
        _json.dump(summary, f)

    lab.save_artifact("summary.json", "training_summary.json")

    # 8. Complete job
    lab.finish(
        message="Training completed successfully",
        score=summary
    )

    return {
        "status": "success",
        "job_id": lab.job.id,
        "model_path": saved_model_path,
        "eval_path": eval_path
    }


# labhost: instead of `if __name__ == "__main__": print(train_model())`.
WitWorld = lab.export(
    train_model,
    name="tlab-train",
    kind="trainer",
    description="The Transformer Lab SDK's complete example, unchanged but for the sandbox",
)
