//! The command line's tests: defaults, ranges, API keys, and what is never shown.

use conveyor_handlers::Backend;

use super::*;

fn serve(args: &[&str]) -> Result<ServeArgs, String> {
    let cli = Cli::try_parse_from([&["conveyor", "serve"][..], args].concat())
        .map_err(|e| e.to_string())?;
    match cli.command {
        Command::Serve(args) => Ok(*args),
        other => panic!("parsed {other:?}"),
    }
}

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

#[test]
fn routing_key_filter_needs_an_event_type() {
    let err = Cli::try_parse_from(["conveyor", "purge", "--routing-key", "raw"]).unwrap_err();
    assert!(err.to_string().contains("--event-type"), "{err}");
}

#[test]
fn serve_defaults_match_the_documented_ones() {
    let args = serve(&["--api-key", "k=tenant"]).unwrap();
    assert_eq!(args.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(args.backends, Backend::ALL.to_vec());
    assert_eq!(args.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(args.max_decompressed_bytes, 50 * 1024 * 1024);
    assert_eq!((args.retention_days, args.partitions_ahead), (30, 7));
    assert_eq!((args.cache_ttl_ms, args.max_future_secs), (5000, 86_400));
    assert!(!args.no_workers);
}

#[test]
fn api_keys_repeat_and_map_to_namespaces() {
    let args = serve(&["--api-key", "a=one", "--api-key", "b=two"]).unwrap();
    let ns: Vec<_> = args.api_keys.iter().map(|k| k.namespace.as_str()).collect();
    assert_eq!(ns, ["one", "two"]);
}

#[test]
fn serve_errors_name_the_flag() {
    for (args, flag) in [
        (&["--api-key", "no-equals"][..], "--api-key"),
        (&[][..], "--api-key"),
        (
            &["--api-key", "k=t", "--backends", "raw,elastic"][..],
            "--backends",
        ),
    ] {
        let err = serve(args).unwrap_err();
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn rollup_rebuild_takes_a_day_range() {
    let cli = Cli::try_parse_from([
        "conveyor",
        "rollup",
        "rebuild",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-31",
    ])
    .unwrap();
    assert!(matches!(
        cli.command,
        Command::Rollup {
            command: RollupCommand::Rebuild { .. }
        }
    ));
    let err = Cli::try_parse_from([
        "conveyor", "rollup", "rebuild", "--from", "jan", "--to", "x",
    ])
    .unwrap_err();
    assert!(err.to_string().contains("--from"), "{err}");
}

#[test]
fn cancel_takes_ids_or_a_key_and_refuses_a_malformed_id() {
    let cli = Cli::try_parse_from(["conveyor", "cancel", "4", "5", "--reason", "late"]).unwrap();
    let Command::Cancel { ids, key, reason } = cli.command else {
        panic!("parsed {:?}", cli.command)
    };
    assert_eq!((ids, key, reason.as_str()), (vec![4, 5], None, "late"));
    let cli = Cli::try_parse_from(["conveyor", "cancel", "--key", "order-1"]).unwrap();
    assert!(matches!(cli.command, Command::Cancel { key: Some(k), .. } if k == "order-1"));

    let err = Cli::try_parse_from(["conveyor", "cancel", "4x"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("4x"), "{err}");
    for refused in [
        &["conveyor", "cancel"][..],
        &["conveyor", "cancel", "4", "--key", "k"],
        &["conveyor", "cancel", "--key", ""],
    ] {
        let err = Cli::try_parse_from(refused).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{refused:?}: {err}");
    }
}

#[test]
fn a_key_may_end_in_base64_padding() {
    let args = serve(&["--api-key", "c2VjcmV0a2V5=="]).unwrap_err();
    assert!(args.contains("--api-key"), "{args}");
    let args = serve(&["--api-key", "c2VjcmV0a2V5==acme", "--api-key", "a=b=c=d"]).unwrap();
    let keys: Vec<_> = args
        .api_keys
        .iter()
        .map(|k| (k.key.as_str(), k.namespace.as_str()))
        .collect();
    assert_eq!(keys, [("c2VjcmV0a2V5=", "acme"), ("a=b=c", "d")]);
    let args = serve(&["--api-key", "dG9rZW4==:=acme"]).unwrap();
    assert_eq!(args.api_keys[0].key, "dG9rZW4==:");
}

#[test]
fn a_malformed_key_is_never_echoed() {
    for bad in [
        "s3cretNoEquals",
        "s3cret=",
        "=s3cret",
        "s3 cret=acme",
        "s3cret\u{1}x=acme",
    ] {
        let err = serve(&["--api-key", bad]).unwrap_err();
        assert!(err.contains("--api-key"), "{bad:?}: {err}");
        assert!(!err.contains("s3"), "{bad:?} echoed: {err}");
    }
    let err = format!("{:?}", serve(&["--api-key", "s3cret=acme"]).unwrap());
    assert!(!err.contains("s3cret"), "Debug shows the key: {err}");
}

#[test]
fn out_of_range_numbers_are_usage_errors_naming_the_flag() {
    for (flag, bad, good) in [
        ("--retention-days", "36501", "36500"),
        ("--retention-days", "0", "1"),
        ("--partitions-ahead", "367", "366"),
        ("--max-body-bytes", "0", "1"),
        ("--max-body-bytes", "1073741825", "1073741824"),
        ("--max-decompressed-bytes", "0", "4294967296"),
        ("--cache-ttl-ms", "86400001", "0"),
        ("--backend-max-retries", "1001", "0"),
        ("--backend-retry-base-ms", "0", "3600000"),
        ("--max-future-secs", "31622401", "31622400"),
        ("--max-future-secs", "18446744073709551615", "0"),
    ] {
        let cli = |value: &str| {
            Cli::try_parse_from(["conveyor", "serve", "--api-key", "k=t", flag, value])
        };
        let err = cli(bad).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{flag} {bad}");
        assert!(err.to_string().contains(flag), "{flag} {bad}: {err}");
        assert!(cli(good).is_ok(), "{flag} {good}");
    }
}

#[test]
fn the_database_url_stays_out_of_debug() {
    let cli = Cli::try_parse_from([
        "conveyor",
        "--database-url",
        "postgres://u:s3cret@h/db?password=s3cret",
        "migrate",
    ])
    .unwrap();
    assert!(!format!("{cli:?}").contains("s3cret"), "{cli:?}");
}

#[test]
fn http_limit_flags_refuse_zero_and_absurd_values_naming_the_flag() {
    for flag in [
        "--max-connections",
        "--header-read-timeout-ms",
        "--idle-timeout-secs",
        "--body-timeout-ms",
        "--request-timeout-ms",
        "--max-requests-in-flight",
        "--shutdown-timeout-secs",
    ] {
        for value in ["0", "99999999999"] {
            let err = serve(&["--api-key", "k=t", flag, value]).unwrap_err();
            assert!(err.contains(flag), "{flag} {value}: {err}");
        }
    }
    let args = serve(&["--api-key", "k=t", "--max-connections", "8"]).unwrap();
    assert_eq!(args.max_connections, 8);
}

#[test]
fn operator_keys_stay_out_of_debug() {
    let args = serve(&["--api-key", "k=t", "--operator-key", "op-s3cret"]).unwrap();
    assert_eq!(args.operator_keys[0].0, "op-s3cret");
    assert!(!format!("{args:?}").contains("op-s3cret"), "{args:?}");
}
