//! Host bindings generated from `wit/` (world `lab:api/plugin`).

wasmtime::component::bindgen!({
    path: "wit",
    world: "lab:api/plugin",
    // The lab imports are sync (they run on the job's own thread); the
    // exports are async so that guest code runs on wasmtime's async path
    // with WASI's async bindings: a guest blocked in a WASI call (sleep,
    // poll) is a pending future the host can drop at its deadline.
    imports: { default: trappable },
    exports: { default: async },
    trappable_error_type: {
        "lab:api/types.lab-error" => crate::error::CallError,
    },
});

pub use lab::api as wit;
