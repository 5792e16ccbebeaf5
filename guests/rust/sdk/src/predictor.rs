//! Predictors (feature `predictor`): plugins served online as apps
//! (`labhost serve`, `/api/v1/apps`). Each instance is loaded once, then
//! answers batches:
//!
//! ```ignore
//! struct Digits;
//! impl lab::Predictor for Digits {
//!     fn describe() -> lab::Describe { lab::Describe::new("digits", lab::Kind::Other, "...") }
//!     fn load() -> lab::Result<()> { /* read the config, load the model */ Ok(()) }
//!     fn predict(inputs: Vec<serde_json::Value>) -> lab::Result<Vec<serde_json::Value>> { Ok(inputs) }
//! }
//! lab::export_predictor!(Digits);
//! ```

/// A predictor: its self-description, its one-time load, its batch predict.
pub trait Predictor {
    fn describe() -> crate::Describe;
    /// Called once per instance before any `predict`; an error fails it.
    fn load() -> crate::Result<()>;
    /// One output per input, in order. An error fails the request only.
    fn predict(inputs: Vec<serde_json::Value>) -> crate::Result<Vec<serde_json::Value>>;
}

#[doc(hidden)]
pub fn __predict<P: Predictor>(inputs: Vec<String>) -> Result<Vec<String>, String> {
    let values = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::from_str(t).map_err(|e| format!("input {i} is not JSON: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = P::predict(values).map_err(|e| e.to_string())?;
    Ok(outputs.iter().map(|v| v.to_string()).collect())
}

/// Export a [`Predictor`] as the component's `describe`/`load`/`predict`.
#[macro_export]
macro_rules! export_predictor {
    ($p:ty) => {
        #[doc(hidden)]
        pub struct __LabhostPredictor;
        impl $crate::bindings::Guest for __LabhostPredictor {
            fn describe() -> $crate::PluginInfo {
                <$p as $crate::Predictor>::describe().into_info()
            }
            fn load() -> ::std::result::Result<(), ::std::string::String> {
                <$p as $crate::Predictor>::load().map_err(|e| e.to_string())
            }
            fn predict(
                inputs: ::std::vec::Vec<::std::string::String>,
            ) -> ::std::result::Result<::std::vec::Vec<::std::string::String>, ::std::string::String> {
                $crate::predictor::__predict::<$p>(inputs)
            }
        }
        $crate::bindings::__export_predictor_world!(__LabhostPredictor with_types_in $crate::bindings);
    };
}
