//! The resource limits of a run, shared by the server's defaults and the
//! language files.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use validator::Validate;

/// Every limit a sandbox runs under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time the program may run, in ms. Default `10000`.
    #[validate(range(min = 100, max = 600_000))]
    pub wall_time_ms: u64,
    /// Memory, in MiB; swap is disabled, and scratch files count. Default `128`.
    #[validate(range(min = 16, max = 65_536))]
    pub memory_mb: u64,
    /// CPUs, may be fractional. Default `1.0`.
    #[validate(range(min = 0.01, max = 256.0))]
    pub cpus: f64,
    /// Processes and threads at once. Default `64`.
    #[validate(range(min = 8, max = 65_536))]
    pub pids: i64,
    /// Bytes kept of stdout and of stderr each; beyond it the run is stopped
    /// with status `output_limit`. Default `65536`.
    #[validate(range(min = 1, max = 16_777_216))]
    pub output_bytes: usize,
    /// Size of each scratch space (the working directory and `/tmp`), in MiB;
    /// also the largest file the program may write. Default `32`.
    #[validate(range(min = 1, max = 16_384))]
    pub scratch_mb: u64,
    /// Open files per process. Default `256`.
    #[validate(range(min = 16, max = 1_048_576))]
    pub open_files: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_time_ms: 10_000,
            memory_mb: 128,
            cpus: 1.0,
            pids: 64,
            output_bytes: 64 * 1024,
            scratch_mb: 32,
            open_files: 256,
        }
    }
}

impl Limits {
    /// The wall-clock deadline of a run.
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_time_ms)
    }

    /// Memory in bytes.
    pub fn memory_bytes(&self) -> i64 {
        (self.memory_mb * 1024 * 1024) as i64
    }

    /// Scratch space size in bytes.
    pub fn scratch_bytes(&self) -> i64 {
        (self.scratch_mb * 1024 * 1024) as i64
    }

    /// Limits with every field a language file gave replacing the default.
    pub fn overridden_by(&self, o: &LimitsOverride) -> Limits {
        Limits {
            wall_time_ms: o.wall_time_ms.unwrap_or(self.wall_time_ms),
            memory_mb: o.memory_mb.unwrap_or(self.memory_mb),
            cpus: o.cpus.unwrap_or(self.cpus),
            pids: o.pids.unwrap_or(self.pids),
            output_bytes: o.output_bytes.unwrap_or(self.output_bytes),
            scratch_mb: o.scratch_mb.unwrap_or(self.scratch_mb),
            open_files: o.open_files.unwrap_or(self.open_files),
        }
    }
}

impl Limits {
    /// The default limits of a compile stage: more time, memory and scratch
    /// space than a run.
    pub fn compile_default() -> Limits {
        Limits {
            wall_time_ms: 30_000,
            memory_mb: 512,
            scratch_mb: 128,
            ..Limits::default()
        }
    }
}

/// The limits a language file's omissions fall back on.
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

/// The limits as a language file gives them: any may be left out.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    pub wall_time_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub output_bytes: Option<usize>,
    pub scratch_mb: Option<u64>,
    pub open_files: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_replaces_only_what_it_gives() {
        let base = Limits::default();
        let o = LimitsOverride {
            memory_mb: Some(512),
            pids: Some(128),
            ..Default::default()
        };
        let merged = base.overridden_by(&o);
        assert_eq!(merged.memory_mb, 512);
        assert_eq!(merged.pids, 128);
        assert_eq!(merged.wall_time_ms, base.wall_time_ms);
        assert_eq!(merged.output_bytes, base.output_bytes);
    }

    #[test]
    fn the_defaults_are_in_range() {
        assert!(Limits::default().validate().is_ok());
    }
}
