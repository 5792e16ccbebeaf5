//! Host bindings generated from the lab API WIT: the live version
//! (`host/wit/`, [`wit`]) and every released version still served
//! (`host/wit-versions/<v>/`, e.g. [`v0_1_0`]). A plugin built against an
//! older version imports that version's interfaces; the linker holds all of
//! them and each old interface delegates to the live implementation
//! (`api/v0_1_0.rs`), so one implementation serves every version.
//! The exports (`describe`, `run`) have the same types in every version,
//! so one set of export bindings calls any plugin.

wasmtime::component::bindgen!({
    path: "wit",
    world: "lab:api/plugin",
    // The lab imports are sync (they run on the job's own thread), except
    // HTTP, which awaits the network on the job's runtime (so the job's
    // deadline also ends a request in flight). The exports are async so
    // that guest code runs on wasmtime's async path with WASI's async
    // bindings: a guest blocked in a WASI call (sleep, poll) is a pending
    // future the host can drop at its deadline.
    // wasi:nn's model loading and inference are async for the same reason:
    // they run on the blocking pool while the job awaits them.
    imports: {
        "lab:api/http.send": async | trappable,
        "wasi:nn/graph.load-by-name": async | trappable,
        "wasi:nn/inference.[method]graph-execution-context.compute": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    trappable_error_type: {
        "lab:api/types.lab-error" => crate::error::CallError,
    },
    with: {
        "wasi:nn/tensor.tensor": crate::nn::Tensor,
        "wasi:nn/graph.graph": crate::nn::Graph,
        "wasi:nn/inference.graph-execution-context": crate::nn::ExecutionContext,
        "wasi:nn/errors.error": crate::nn::NnError,
    },
});

pub use lab::api as wit;

/// `lab:api@0.1.0`, frozen: only its imports are used (see the module doc).
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "wit-versions/0.1.0",
        world: "lab:api/plugin",
        imports: { default: trappable },
        exports: { default: async },
        trappable_error_type: {
            "lab:api/types.lab-error" => crate::error::CallError,
        },
    });

    pub use lab::api as wit;
}

/// The `predictor` world (plugins served as apps): its imports are the
/// plugin world's, already in the linker, so only its exports are bound.
pub mod predictor {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "lab:api/predictor",
        exports: { default: async },
        with: {
            "lab:api": crate::bindings::lab::api,
            "wasi:nn": crate::bindings::wasi::nn,
        },
    });
}
