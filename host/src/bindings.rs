//! Host bindings generated from `wit/` (world `lab:api/plugin`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "lab:api/plugin",
    imports: { default: trappable },
    trappable_error_type: {
        "lab:api/types.lab-error" => crate::error::CallError,
    },
});

pub use lab::api as wit;
