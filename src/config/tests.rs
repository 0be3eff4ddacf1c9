//! The configuration's loading, aliases and refusals, in figment's `Jail`.

// figment's `Jail` closures return its (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;
use std::path::PathBuf;

fn load_err() -> String {
    Config::load().unwrap_err().to_string()
}

/// Every leaf key of `value`, dotted, with its value as text.
fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(&key, value, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The rows `| \`key\` | \`default\` | ...` of the docs' tables.
fn documented() -> Vec<(String, String)> {
    let docs = include_str!("../../docs/configuration.md");
    let unquote = |cell: &str| {
        cell.strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .map(str::to_string)
    };
    docs.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            Some((unquote(cells.get(1)?)?, unquote(cells.get(2)?)?))
        })
        .collect()
}

#[test]
fn every_key_and_its_default_are_what_the_docs_document() {
    Jail::expect_with(|_| {
        let config = Config::load().expect("defaults load");
        assert_eq!(config, Config::default());
        Ok(())
    });
    let mut defaults = Vec::new();
    leaves(
        "",
        &serde_json::to_value(Config::default()).unwrap(),
        &mut defaults,
    );
    let documented = documented();
    for (key, default) in &defaults {
        let row = documented.iter().find(|(k, _)| k == key);
        assert_eq!(
            row.map(|(_, d)| d.as_str()),
            Some(default.as_str()),
            "docs/configuration.md documents `{key}` (default `{default}`)"
        );
    }
    // Keys without a default (unset unless given) are documented too.
    let unset = [
        "docker_host",
        "sandbox_uids",
        "server.max_connections_per_peer",
        "runs.client_max_concurrent",
        "runs.client_max_queue",
        "judge0.client_max_queue",
        "judge0.client_max_stored",
        "judge0.client_max_stored_bytes",
        "judge0.homepage",
        "judge0.source_code",
        "front_door.api_keys",
        "front_door.api_keys_file",
        "front_door.metrics_key",
    ];
    for key in unset {
        assert!(
            documented.iter().any(|(k, _)| k == key),
            "docs/configuration.md documents `{key}`"
        );
    }
    // And nothing else: every documented key is one.
    for (key, _) in documented
        .iter()
        .filter(|(k, _)| !k.starts_with(ENV_PREFIX))
    {
        let known = defaults.iter().any(|(k, _)| k == key) || unset.contains(&key.as_str());
        assert!(
            known,
            "docs/configuration.md documents `{key}`, which is no key"
        );
    }
    let docs = include_str!("../../docs/configuration.md");
    for (flat, nested) in ALIASES {
        let row = format!("| `{ENV_PREFIX}{}` | `{nested}` |", flat.to_uppercase());
        assert!(docs.contains(&row), "the alias table lacks {row}");
    }
}

#[test]
fn the_flat_names_of_earlier_releases_still_set_their_nested_keys() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_POOL_SIZE", "5");
        jail.set_env("CODE_RUNNER_MAX_CONCURRENT_RUNS", "7");
        jail.set_env("CODE_RUNNER_CLIENT_MAX_RUNS", "2");
        jail.set_env("CODE_RUNNER_MAX_BODY_BYTES", "4096");
        jail.set_env("CODE_RUNNER_MAX_TESTS", "9");
        jail.set_env("CODE_RUNNER_RATE_LIMIT_PER_MINUTE", "30");
        jail.set_env("CODE_RUNNER_REQUESTS__MAX_ARGS", "3");
        let config = Config::load().expect("loads");
        assert_eq!(config.pool.size, 5);
        assert_eq!(config.runs.max_concurrent, 7);
        assert_eq!(config.runs.client_slots(), 2);
        assert_eq!(config.server.max_body_bytes, 4096);
        assert_eq!(config.requests.max_tests, 9);
        assert_eq!(config.requests.max_args, 3);
        assert_eq!(config.front_door.rate_limit_per_minute, 30);
        Ok(())
    });
}

#[test]
fn an_error_names_the_variable_that_was_set_alias_or_not() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_POOL__SIZE", "999");
        let err = load_err();
        assert!(
            err.contains("`pool.size`") && err.contains("CODE_RUNNER_POOL__SIZE"),
            "{err}"
        );
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_POOL_SIZE", "999");
        let err = load_err();
        assert!(
            err.contains("`pool.size`") && err.contains("CODE_RUNNER_POOL_SIZE"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn a_flat_key_in_a_file_is_refused_with_its_new_name() {
    Jail::expect_with(|jail| {
        jail.create_file("cr.toml", "pool_size = 4\n")?;
        jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
        let err = load_err();
        assert!(
            err.contains("pool_size") && err.contains("`pool.size` now"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn a_limit_a_language_file_leaves_out_comes_from_the_environment() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_LIMITS__MEMORY_MB", "300");
        jail.set_env("CODE_RUNNER_LIMITS__WALL_TIME_MS", "4000");
        let config = Config::load().expect("loads");
        let registry = crate::language::Registry::builtin(&config.default_limits()).unwrap();
        let python = registry.get("python").unwrap();
        assert_eq!(python.limits.memory_mb, 300);
        assert_eq!(python.limits.wall_time_ms, 4000);
        assert_eq!(python.limits.pids, Limits::default().pids);
        Ok(())
    });
}

#[test]
fn api_keys_come_from_a_comma_separated_variable_and_are_never_shown() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_API_KEYS", "key-one, key-two,");
        jail.set_env("CODE_RUNNER_METRICS_KEY", "scrape-key");
        jail.set_env("CODE_RUNNER_LOG_FORMAT", "json");
        let config = Config::load().expect("loads");
        assert_eq!(
            config.front_door.api_keys,
            [Secret("key-one".into()), Secret("key-two".into())]
        );
        assert_eq!(config.log_format, LogFormat::Json);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("key-one") && !shown.contains("scrape-key"),
            "{shown}"
        );
        Ok(())
    });
}

#[test]
fn environment_overrides_file_which_overrides_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cr.toml",
            "[server]\nport = 9000\n[runs]\nmax_queue = 3\n[limits]\nmemory_mb = 256\n",
        )?;
        jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
        jail.set_env("CODE_RUNNER_PORT", "9100");
        jail.set_env("CODE_RUNNER_HOST", "0.0.0.0");
        jail.set_env("CODE_RUNNER_LANGUAGES_DIR", "/srv/langs");
        jail.set_env("CODE_RUNNER_LIMITS__PIDS", "99");
        let config = Config::load().expect("loads");
        assert_eq!(config.server.port, 9100);
        assert_eq!(config.runs.max_queue, 3);
        assert_eq!(config.server.host, std::net::IpAddr::from([0, 0, 0, 0]));
        assert_eq!(config.languages_dir, PathBuf::from("/srv/langs"));
        assert_eq!(config.limits.memory_mb, 256);
        assert_eq!(config.limits.pids, 99);
        Ok(())
    });
}

#[test]
fn a_value_that_does_not_parse_names_the_key_and_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_PORT", "eighty");
        let err = load_err();
        assert!(err.contains("port"), "{err}");
        assert!(err.contains("CODE_RUNNER_PORT"), "{err}");
        Ok(())
    });
}

#[test]
fn an_out_of_range_value_names_the_key_its_source_and_the_range() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_MAX_CONCURRENT_RUNS", "0");
        let err = load_err();
        assert!(err.contains("`runs.max_concurrent`"), "{err}");
        assert!(err.contains("CODE_RUNNER_MAX_CONCURRENT_RUNS"), "{err}");
        assert!(err.contains("between 1 and 1024"), "{err}");
        Ok(())
    });
}

#[test]
fn a_nested_limit_out_of_range_in_the_file_names_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("cr.toml", "[limits]\nmemory_mb = 1\n")?;
        jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
        let err = load_err();
        assert!(err.contains("`limits.memory_mb`"), "{err}");
        assert!(err.contains("cr.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn an_unknown_key_in_the_file_is_refused() {
    Jail::expect_with(|jail| {
        jail.create_file("cr.toml", "prot = 1\n")?;
        jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
        let err = load_err();
        assert!(err.contains("prot"), "{err}");
        Ok(())
    });
}

#[test]
fn a_missing_config_file_is_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_CONFIG", "nope.toml");
        let err = load_err();
        assert!(err.contains("nope.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn sandbox_uids_are_a_range_without_root_or_nobody() {
    Jail::expect_with(|jail| {
        assert_eq!(
            Config::load().unwrap().sandbox_uids(),
            UidRange::for_instance("default")
        );
        jail.set_env("CODE_RUNNER_SANDBOX_UIDS", "200000-200099");
        let range = Config::load().unwrap().sandbox_uids();
        assert_eq!((range.first, range.count()), (200_000, 100));
        for (value, why) in [
            ("0-100", "root"),
            ("65000-65535", "nobody"),
            ("300-200", "no greater"),
            ("many", "FIRST-LAST"),
        ] {
            jail.set_env("CODE_RUNNER_SANDBOX_UIDS", value);
            let err = load_err();
            assert!(
                err.contains("sandbox_uids") && err.contains(why),
                "{value}: {err}"
            );
        }
        Ok(())
    });
}

#[test]
fn a_bad_instance_name_is_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_INSTANCE", "has space");
        let err = load_err();
        assert!(err.contains("`instance`"), "{err}");
        Ok(())
    });
}

#[test]
fn a_callback_host_without_a_port_is_refused_naming_the_key() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cr.toml",
            "[judge0]\ncallback_hosts = [\"hooks.example.com:443\", \"[::1]:9000\"]\n",
        )?;
        jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
        let config = Config::load().expect("loads");
        assert_eq!(
            config
                .judge0
                .callback_hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["hooks.example.com:443", "[::1]:9000"]
        );
        for (entry, why) in [
            ("hooks.example.com", "names no port"),
            ("::1", "in brackets"),
            ("hooks.example.com:0", "from 1 to 65535"),
            ("hooks.example.com:https", "from 1 to 65535"),
            ("[nope]:80", "not an IPv6 address"),
            ("a b:80", "not a host name"),
        ] {
            jail.create_file(
                "cr.toml",
                &format!("[judge0]\ncallback_hosts = [\"{entry}\"]\n"),
            )?;
            let err = load_err();
            assert!(
                err.contains("`judge0.callback_hosts")
                    && err.contains(why)
                    && err.contains("cr.toml"),
                "{entry}: {err}"
            );
        }
        jail.clear_env();
        jail.set_env("CODE_RUNNER_JUDGE0__CALLBACK_HOSTS", "[hooks.example.com]");
        let err = load_err();
        assert!(
            err.contains("`judge0.callback_hosts")
                && err.contains("names no port")
                && err.contains("environment variable CODE_RUNNER_JUDGE0__CALLBACK_HOSTS:"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn judge0s_about_answers_the_homepage_and_source_set_or_true_defaults() {
    let unset = Judge0Config::default();
    assert_eq!(unset.homepage(), "/playground");
    let name = concat!("code-runner ", env!("CARGO_PKG_VERSION"));
    assert_eq!(unset.source_code(), name);
    let set = Judge0Config {
        homepage: Some("https://judge.example.org".into()),
        source_code: Some("https://git.example.org/code-runner".into()),
        ..Judge0Config::default()
    };
    assert_eq!(set.homepage(), "https://judge.example.org");
    assert_eq!(set.source_code(), "https://git.example.org/code-runner");
    Jail::expect_with(|jail| {
        jail.set_env("CODE_RUNNER_JUDGE0__HOMEPAGE", "https://judge.example.org");
        let config = Config::load().expect("loads");
        assert_eq!(config.judge0.homepage(), "https://judge.example.org");
        jail.set_env("CODE_RUNNER_JUDGE0__SOURCE_CODE", "");
        assert!(Config::load().is_err(), "an empty source_code is refused");
        Ok(())
    });
}
