//! {{name}}: a labhost plugin. Build with ./build.sh, run with
//! `labhost run {{name}}.wasm -c greeting=hi`.

use lab::{Describe, Kind, ParamType, Plugin};

struct {{type}};

impl Plugin for {{type}} {
    fn describe() -> Describe {
        Describe::new("{{name}}", Kind::{{kind_rust}}, "Describe what {{name}} does")
            .param("greeting", ParamType::Text, Some("\"hello\""), "What to write")
            .param("repeat", ParamType::Integer, Some("3"), "How many lines")
    }

    fn run() -> lab::Result<()> {
        let config = lab::config();
        let greeting = config["greeting"].as_str().unwrap_or("hello").to_owned();
        let repeat = config["repeat"].as_u64().unwrap_or(1);
        lab::info(&format!("writing {repeat} lines"));
        let mut text = String::new();
        for i in 0..repeat {
            if lab::should_stop() {
                return lab::fail("stopped on request");
            }
            text.push_str(&format!("{greeting} {i}\n"));
            lab::progress_stage(100.0 * (i + 1) as f32 / repeat as f32, "writing")?;
        }
        std::fs::write("/work/out.txt", text)?;
        let stored = lab::save_artifact("/work/out.txt", None)?;
        lab::finish(&format!("wrote {} bytes", stored.size), &[("lines", repeat as f64)])
    }
}

lab::export_plugin!({{type}});
