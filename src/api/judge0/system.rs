//! What Judge0's service holds and runs on: `GET /judge0/workers` (the
//! queue and this service's workers), `/statistics` (the stored
//! submissions counted) and `/system_info` (the machine), in Judge0's
//! shapes (`health_controller.rb`, `info_controller.rb`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use indexmap::IndexMap;
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::super::answer;
use super::super::state::Api;
use super::info::JUDGE0_VERSION;
use super::request::{Judge0ErrorBody, Refused, Request};
use crate::judge0::render::timestamp;
use crate::judge0::status::Judge0Status;
use crate::judge0::store::overview::DAY_MS;
use crate::runner::Runner;

/// One queue of `GET /judge0/workers`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct Queue {
    /// `1.13.1`: Judge0 names its queue by its version.
    queue: &'static str,
    /// Submissions waiting, every service's.
    size: i64,
    /// This service's workers.
    available: usize,
    idle: usize,
    working: usize,
    /// Always 0: workers here never pause.
    paused: usize,
    /// Submissions this service finished as Internal Errors since it
    /// started.
    failed: u64,
}

/// The queue and this service's workers: `[]` when nothing is stored (no
/// queue).
#[utoipa::path(get, path = "/workers", tag = "judge0", operation_id = "judge0_workers",
    responses(
        (status = 200, description = "The queue and this service's workers", body = Vec<Queue>),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "The database failed", body = Judge0ErrorBody),
    ))]
pub(super) async fn workers<R: Runner>(api: &Api<R>) -> Result<Response, Refused> {
    let queues: Vec<Queue> = match api.judge0.workers().await.map_err(Refused::failed)? {
        None => Vec::new(),
        Some(w) => vec![Queue {
            queue: JUDGE0_VERSION,
            size: w.queued,
            available: w.workers,
            idle: w.workers.saturating_sub(w.working),
            working: w.working,
            paused: 0,
            failed: w.failed,
        }],
    };
    Ok(answer::json(StatusCode::OK, &queues))
}

/// A language of `/statistics`: its Judge0 id and name (`null` for an id
/// no language file gives now).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct Named {
    id: Option<i64>,
    name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct LanguageCount {
    language: Named,
    count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct StatusCount {
    status: Named,
    count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct SubmissionCounts {
    total: i64,
    today: i64,
    /// The 30 days before today (UTC), newest first: `"2024-12-08": 3`.
    #[schema(value_type = BTreeMap<String, i64>)]
    last_30_days: IndexMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct DatabaseSize {
    /// As PostgreSQL's `pg_size_pretty` writes it: `8157 kB`.
    size_pretty: String,
    size_in_bytes: i64,
}

/// `GET /judge0/statistics`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct Statistics {
    created_at: String,
    /// The same as `created_at`: each answer is counted afresh.
    cached_until: String,
    submissions: SubmissionCounts,
    /// Most submissions first.
    languages: Vec<LanguageCount>,
    /// Most submissions first.
    statuses: Vec<StatusCount>,
    /// The whole database, whatever the caller reaches.
    database: DatabaseSize,
}

/// The stored submissions the caller reaches (with keys on, its key's,
/// or every one for `judge0:all`), counted by language, status and day.
#[utoipa::path(get, path = "/statistics", tag = "judge0", operation_id = "judge0_statistics",
    params(("invalidate_cache" = Option<bool>, Query, description = "Accepted; every answer is counted afresh")),
    responses(
        (status = 200, description = "The stored submissions counted", body = Statistics),
        (status = 400, description = "Storage off", body = Judge0ErrorBody),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "The database failed", body = Judge0ErrorBody),
    ))]
pub(super) async fn statistics<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
) -> Result<Response, Refused> {
    let (counts, today) =
        (api.judge0.counts(request.scope(), 30).await).map_err(Refused::failed)?;
    let now = timestamp(crate::judge0::store::now_ms());
    let day = |d: i64| timestamp(d * DAY_MS)[..10].to_string();
    let per_day: BTreeMap<i64, i64> = counts.days.iter().copied().collect();
    let registry = api.runner.registry();
    let mut languages: Vec<LanguageCount> = (counts.languages.iter())
        .map(|&(id, count)| LanguageCount {
            language: Named {
                id,
                name: id.and_then(|id| Some(registry.by_judge0_id(id)?.judge0_name.clone())),
            },
            count,
        })
        .collect();
    languages.sort_by_key(|l| (std::cmp::Reverse(l.count), l.language.id));
    let mut statuses: Vec<StatusCount> = (counts.statuses.iter())
        .map(|&(id, count)| StatusCount {
            status: Named {
                id: Some(id),
                name: Judge0Status::from_id(id).map(|s| s.description().to_string()),
            },
            count,
        })
        .collect();
    statuses.sort_by_key(|s| (std::cmp::Reverse(s.count), s.status.id));
    let statistics = Statistics {
        created_at: now.clone(),
        cached_until: now,
        submissions: SubmissionCounts {
            total: counts.statuses.iter().map(|(_, n)| n).sum(),
            today: per_day.get(&today).copied().unwrap_or(0),
            last_30_days: (1..=30)
                .map(|back| {
                    (
                        day(today - back),
                        per_day.get(&(today - back)).copied().unwrap_or(0),
                    )
                })
                .collect(),
        },
        languages,
        statuses,
        database: DatabaseSize {
            size_pretty: size_pretty(counts.database_bytes),
            size_in_bytes: counts.database_bytes,
        },
    };
    Ok(answer::json(StatusCode::OK, &statistics))
}

/// `bytes` as PostgreSQL's `pg_size_pretty` writes it: bytes below
/// 10240, then kB, MB, GB and TB, each below 20480 of its unit, rounded
/// half up.
fn size_pretty(bytes: i64) -> String {
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if bytes.abs() < 10 * 1024 {
        return format!("{bytes} bytes");
    }
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB"] {
        if size.abs() < 20 * 1024 - 1 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} TB", half_rounded(size))
}

/// The machine the service runs on, as `lscpu` and `free -h` name it.
#[utoipa::path(get, path = "/system_info", tag = "judge0", operation_id = "judge0_system_info",
    responses((status = 200, description = "The machine: lscpu's names, and free -h's Mem and Swap",
        body = BTreeMap<String, String>)))]
pub(super) fn system_info() -> Response {
    static INFO: OnceLock<IndexMap<String, String>> = OnceLock::new();
    let info = INFO.get_or_init(|| {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        machine(&read("/proc/cpuinfo"), &read("/proc/meminfo"))
    });
    answer::json(StatusCode::OK, info)
}

/// `lscpu`'s names for what `cpuinfo` says, and `free -h`'s totals of
/// `meminfo`.
fn machine(cpuinfo: &str, meminfo: &str) -> IndexMap<String, String> {
    let mut info = IndexMap::new();
    info.insert("Architecture".into(), std::env::consts::ARCH.into());
    let order = if cfg!(target_endian = "little") {
        "Little Endian"
    } else {
        "Big Endian"
    };
    info.insert("Byte Order".into(), order.into());
    let field = |text: &str, name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    info.insert("CPU(s)".into(), cpus.to_string());
    for (name, ours) in [
        ("vendor_id", "Vendor ID"),
        ("model name", "Model name"),
        ("cpu family", "CPU family"),
        ("model", "Model"),
        ("stepping", "Stepping"),
    ] {
        if let Some(value) = field(cpuinfo, name) {
            info.insert(ours.into(), value);
        }
    }
    for (name, ours) in [("MemTotal", "Mem"), ("SwapTotal", "Swap")] {
        let kib =
            field(meminfo, name).and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok());
        if let Some(kib) = kib {
            info.insert(ours.into(), human(kib));
        }
    }
    info
}

/// KiB as `free -h` writes a total: `7.7Gi`, `512Mi`, `0B`.
fn human(kib: u64) -> String {
    if kib == 0 {
        return "0B".into();
    }
    let mut value = kib as f64;
    let mut unit = "Ki";
    for next in ["Mi", "Gi", "Ti", "Pi"] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if value < 10.0 {
        format!("{value:.1}{unit}")
    } else {
        format!("{}{unit}", value.round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_as_postgres_and_free_write_them() {
        assert_eq!(size_pretty(8191), "8191 bytes");
        assert_eq!(size_pretty(10 * 1024), "10 kB");
        assert_eq!(size_pretty(8_352_771), "8157 kB");
        assert_eq!(size_pretty(25 * 1024 * 1024), "25 MB");
        assert_eq!(size_pretty(3 << 40), "3072 GB");
        assert_eq!(size_pretty(30 << 40), "30 TB");
        assert_eq!(human(8_062_000), "7.7Gi");
        assert_eq!(human(524_288), "512Mi");
        assert_eq!(human(0), "0B");
    }

    #[test]
    fn the_machine_is_named_as_lscpu_names_it() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
                       model name\t: Intel(R) Xeon(R)\nstepping\t: 7\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n";
        let meminfo = "MemTotal:       16318892 kB\nMemFree:  1 kB\nSwapTotal:             0 kB\n";
        let info = machine(cpuinfo, meminfo);
        assert_eq!(info["CPU(s)"], "2");
        assert_eq!(info["Vendor ID"], "GenuineIntel");
        assert_eq!(info["Model name"], "Intel(R) Xeon(R)");
        assert_eq!(
            (&info["Model"], &info["Stepping"]),
            (&"85".into(), &"7".into())
        );
        assert_eq!(
            (&info["Mem"], &info["Swap"]),
            (&"16Gi".into(), &"0B".into())
        );
        assert_eq!(info["Architecture"], std::env::consts::ARCH);
    }
}
