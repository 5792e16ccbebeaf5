"""{{name}}: a labhost plugin. Build with ./build.sh, run with
`labhost run {{name}}.wasm -c greeting=hi`."""

from lab import lab


def run():
    config = lab.get_config()
    greeting, repeat = config["greeting"], config["repeat"]
    lab.log(f"writing {repeat} lines")
    lines = []
    for i in range(repeat):
        if lab.should_stop():
            lab.error("stopped on request")
            return
        lines.append(f"{greeting} {i}\n")
        lab.update_progress(100 * (i + 1) / repeat, "writing")
    with open("out.txt", "w") as f:  # the working directory is /work
        f.writelines(lines)
    stored = lab.save_artifact("out.txt")
    lab.finish(f"wrote {stored.size} bytes", score={"lines": repeat})


WitWorld = lab.export(
    run,
    name="{{name}}",
    kind="{{kind}}",
    description="Describe what {{name}} does",
    params=[
        lab.param("greeting", "text", "hello", "What to write"),
        lab.param("repeat", "integer", 3, "How many lines"),
    ],
)
