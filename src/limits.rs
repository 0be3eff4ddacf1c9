//! The resource limits of a stage (a compile or a run), and the one rule
//! by which they are decided: the server's defaults, then the language
//! file (which may set any limit within its range), then the request
//! (which may only lower one).
//!
//! Every limit is declared once, in the `limits!` table below: its name,
//! type, default, range and meaning. The table gives [`Limits`] (every
//! limit set), [`LimitsOverride`] (any may be left out: a language file's
//! `[limits]`, or what a request asks), [`Limit`] (a limit's name, for
//! errors) and [`Limits::resolve`], the merge.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError, ValidationErrors};

/// Declares every limit once: `name: type = default, min..=max; doc`.
macro_rules! limits {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr, $min:literal ..= $max:literal; )+) => {
        /// Every limit a sandbox runs under.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct Limits {
            $( $(#[doc = $doc])+ pub $name: $ty, )+
        }

        impl Default for Limits {
            /// The run defaults; see each field.
            fn default() -> Self {
                Limits { $( $name: $default, )+ }
            }
        }

        /// Limits of which any may be left out: a language file's
        /// `[limits]`, or the limits a request asks for.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct LimitsOverride {
            $( $(#[doc = $doc])+ pub $name: Option<$ty>, )+
        }

        /// The name of one limit.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Limit { $( $name, )+ }

        impl Limit {
            /// Its key, as in a language file and the configuration.
            pub fn key(self) -> &'static str {
                match self { $( Limit::$name => stringify!($name), )+ }
            }
        }

        impl Limits {
    /// Whether a sandbox made for `other` enforces these limits: the ones
    /// the container itself holds (memory, CPUs, processes, scratch space,
    /// open files) are the same. Time, CPU time and output are held by the
    /// service and the supervisor for each run, whatever the sandbox.
    pub fn same_sandbox(&self, other: &Limits) -> bool {
        self.memory_mb == other.memory_mb
            && self.cpus == other.cpus
            && self.pids == other.pids
            && self.scratch_mb == other.scratch_mb
            && self.open_files == other.open_files
    }

            /// These limits with `replace`'s values instead where it has
            /// them, and then `lower`'s where it has them, each of which
            /// must not be above the value it replaces.
            ///
            /// This is the only place limits are merged: a language's
            /// limits are the server's defaults resolved with its file's
            /// `[limits]` (`replace`); a job's are the language's resolved
            /// with the request's (`lower`).
            pub fn resolve(
                &self,
                replace: &LimitsOverride,
                lower: &LimitsOverride,
            ) -> Result<Limits, LimitRaised> {
                let mut out = self.clone();
                $(
                    if let Some(value) = replace.$name {
                        out.$name = value;
                    }
                    if let Some(value) = lower.$name {
                        if value > out.$name {
                            return Err(LimitRaised {
                                limit: Limit::$name,
                                requested: value.to_string(),
                                allowed: out.$name.to_string(),
                            });
                        }
                        out.$name = value;
                    }
                )+
                Ok(out)
            }
        }

        impl Validate for Limits {
            fn validate(&self) -> Result<(), ValidationErrors> {
                let mut errors = ValidationErrors::new();
                $(
                    if !($min..=$max).contains(&self.$name) {
                        let message = format!(
                            "must be between {} and {} (got {})", $min, $max, self.$name
                        );
                        errors.add(
                            stringify!($name),
                            ValidationError::new("range").with_message(message.into()),
                        );
                    }
                )+
                if errors.is_empty() { Ok(()) } else { Err(errors) }
            }
        }
    };
}

limits! {
    /// Wall-clock time the program may run, in ms. Default `10000`.
    wall_time_ms: u64 = 10_000, 100..=600_000;
    /// CPU time the stage's processes may use together (user and system),
    /// in ms; past it the stage is stopped with status `timeout`. Default
    /// `10000`.
    cpu_time_ms: u64 = 10_000, 10..=3_600_000;
    /// Memory, in MiB; swap is disabled, and scratch files count. Default `128`.
    memory_mb: u64 = 128, 16..=65_536;
    /// CPUs, may be fractional. Default `1.0`.
    cpus: f64 = 1.0, 0.01..=256.0;
    /// Processes and threads at once. Default `64`.
    pids: u64 = 64, 8..=65_536;
    /// Bytes kept of stdout and of stderr each; beyond it the stage is
    /// stopped with status `output_limit`. Default `65536`.
    output_bytes: u64 = 64 * 1024, 1..=16_777_216;
    /// Size of each scratch space (the working directory and `/tmp`), in
    /// MiB; also the largest file the program may write. Default `32`.
    scratch_mb: u64 = 32, 1..=16_384;
    /// Open files per process. Default `256`.
    open_files: u64 = 256, 16..=1_048_576;
}

/// A request asked for more than a limit allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} may only be lowered: {requested} is above {allowed}", limit.key())]
pub struct LimitRaised {
    pub limit: Limit,
    /// The value asked for, as text.
    pub requested: String,
    /// The value it may not exceed, as text.
    pub allowed: String,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Limits {
    /// The default limits of a compile stage: more time, memory and
    /// scratch space than a run (30000 ms of wall time, 60000 ms of CPU
    /// time, 512 MiB, 128 MiB).
    pub fn compile_default() -> Limits {
        Limits {
            wall_time_ms: 30_000,
            cpu_time_ms: 60_000,

            memory_mb: 512,
            scratch_mb: 128,
            ..Limits::default()
        }
    }

    /// The wall-clock deadline.
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_time_ms)
    }

    /// The CPU-time limit.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_millis(self.cpu_time_ms)
    }

    /// Memory in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mb * 1024 * 1024
    }

    /// Scratch space size in bytes.
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch_mb * 1024 * 1024
    }

    /// The output cap of each stream, in bytes.
    pub fn output_cap(&self) -> usize {
        usize::try_from(self.output_bytes).unwrap_or(usize::MAX)
    }
}

/// The limits a language file's omissions fall back on (the server's
/// `limits` and `compile_limits`).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultLimits {
    /// For runs.
    pub run: Limits,
    /// For compile stages.
    pub compile: Limits,
}

impl Default for DefaultLimits {
    fn default() -> Self {
        DefaultLimits {
            run: Limits::default(),
            compile: Limits::compile_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(memory_mb: u64, pids: u64) -> LimitsOverride {
        LimitsOverride {
            memory_mb: Some(memory_mb),
            pids: Some(pids),
            ..LimitsOverride::default()
        }
    }

    #[test]
    fn a_file_replaces_only_what_it_gives_up_or_down() {
        let server = Limits::default();
        let merged = server
            .resolve(&file(512, 8), &LimitsOverride::default())
            .unwrap();
        assert_eq!((merged.memory_mb, merged.pids), (512, 8));
        assert_eq!(merged.wall_time_ms, server.wall_time_ms);
        assert_eq!(merged.output_bytes, server.output_bytes);
        assert_eq!(merged.cpus, server.cpus);
    }

    #[test]
    fn a_request_may_lower_a_limit_but_never_raise_it() {
        let language = Limits::default()
            .resolve(&file(256, 64), &LimitsOverride::default())
            .unwrap();
        let lowered = LimitsOverride {
            wall_time_ms: Some(1500),
            memory_mb: Some(64),
            ..LimitsOverride::default()
        };
        let job = language
            .resolve(&LimitsOverride::default(), &lowered)
            .unwrap();
        assert_eq!((job.wall_time_ms, job.memory_mb, job.pids), (1500, 64, 64));
        let equal = LimitsOverride {
            memory_mb: Some(256),
            ..LimitsOverride::default()
        };
        assert_eq!(
            language
                .resolve(&LimitsOverride::default(), &equal)
                .unwrap()
                .memory_mb,
            256
        );
        let raised = LimitsOverride {
            memory_mb: Some(257),
            ..LimitsOverride::default()
        };
        let err = language
            .resolve(&LimitsOverride::default(), &raised)
            .unwrap_err();
        assert_eq!(
            err,
            LimitRaised {
                limit: Limit::memory_mb,
                requested: "257".into(),
                allowed: "256".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "memory_mb may only be lowered: 257 is above 256"
        );
    }

    #[test]
    fn the_request_is_held_to_the_files_value_not_the_servers() {
        // The file raised memory to 512; the request may ask up to 512.
        let merged = Limits::default()
            .resolve(&file(512, 64), &file(300, 64))
            .unwrap();
        assert_eq!(merged.memory_mb, 300);
        assert!(
            Limits::default()
                .resolve(&file(100, 64), &file(128, 64))
                .is_err()
        );
    }

    #[test]
    fn the_defaults_are_in_range_and_out_of_range_values_are_named() {
        assert!(Limits::default().validate().is_ok());
        assert!(Limits::compile_default().validate().is_ok());
        let bad = Limits {
            memory_mb: 1,
            cpus: 0.0,
            ..Limits::default()
        };
        let errors = bad.validate().unwrap_err();
        let fields = errors.field_errors();
        assert!(fields.contains_key("memory_mb") && fields.contains_key("cpus"));
        assert_eq!(
            fields["memory_mb"][0].message.as_deref(),
            Some("must be between 16 and 65536 (got 1)")
        );
    }
}
