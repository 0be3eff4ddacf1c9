//! Languages: one `languages/*.toml` file each, parsed and validated into a
//! [`Language`] with every limit decided ([`file`](mod@file)), the compiler
//! options a request may add ([`options`]); the set served
//! ([`Registry`], several versions of a name side by side); and how that
//! set follows the folder while the service runs ([`reload`]). Python is
//! built in, for when no folder exists.

mod file;
mod options;
mod registry;
pub(crate) mod reload;

pub(crate) use file::Language;
#[cfg(test)]
pub(crate) use file::Origin;
pub(crate) use options::always_refused;
pub(crate) use registry::{Lookup, Registry, RegistryError};
