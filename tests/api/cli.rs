//! The `boxoffice` binary's command line: help, `migrate` on its own, and `loadtest` in embedded mode.

use std::{process::Output, time::Duration};

use boxoffice::store::entities::orders;
use boxoffice_migrations::{Migrator, MigratorTrait};
use sea_orm::{Database, EntityTrait, PaginatorTrait};

/// Runs the binary with `args` in `dir`, with no configuration file, and waits for it to exit.
async fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    command
        .args(args)
        .current_dir(dir)
        .env("BOXOFFICE_CONFIG", dir.join("none.toml"))
        .env("BOXOFFICE_GRPC__ADDR", "127.0.0.1:0")
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    // A guard, not an assertion: a command that serves instead of exiting would hang the suite.
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the command exits")
        .expect("the binary runs")
}

#[tokio::test]
async fn help_lists_the_serve_and_migrate_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--help"], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: boxoffice"), "{help}");
    assert!(help.contains("serve") && help.contains("migrate"), "{help}");
}

#[tokio::test]
async fn migrate_applies_every_migration_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::common::fresh_database(dir.path()).await;
    let out = run(dir.path(), &["migrate"], &[("BOXOFFICE_DATABASE__URL", &url), ("RUST_LOG", "warn")]).await;
    assert!(out.status.success(), "{out:?}");
    let db = Database::connect(&url).await.unwrap();
    assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty(), "no migration left to apply");
    assert_eq!(orders::Entity::find().count(&db).await.unwrap(), 0, "the schema is there, and empty");
    // Running it again is a no-op that still succeeds.
    let again = run(dir.path(), &["migrate"], &[("BOXOFFICE_DATABASE__URL", &url), ("RUST_LOG", "warn")]).await;
    assert!(again.status.success(), "{again:?}");
}

#[tokio::test]
async fn loadtest_without_a_url_starts_an_embedded_boxoffice_and_checks_the_invariant_against_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let args = ["loadtest", "-d", "1", "-c", "4", "--users", "4", "--quiet", "--json", report.to_str().unwrap()];
    // Cheap password hashing: the harness creates its users through the API.
    let env =
        [("BOXOFFICE_AUTH__ARGON2_MEMORY_KIB", "64"), ("BOXOFFICE_AUTH__ARGON2_ITERATIONS", "1"), ("RUST_LOG", "warn")];
    let out = run(dir.path(), &args, &env).await;
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(report["statuses"]["201"].as_u64().unwrap_or(0) > 0, "holds were granted: {report}");
    let inv = &report["invariant"];
    assert_eq!(inv["holds"], true, "{report}");
    // The orders table was read (through the binary's host), and agrees with the API.
    assert_eq!(inv["db_held"], inv["held"], "{report}");
    assert_eq!(inv["db_sold"], inv["sold"], "{report}");
    assert!(inv["db_held"].as_u64().unwrap() > 0, "{report}");
}

#[tokio::test]
async fn loadtest_over_grpc_books_through_the_grpc_api_and_checks_the_same_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let args = [
        "loadtest",
        "--grpc",
        "--scenario",
        "rush",
        "--capacity",
        "30",
        "-d",
        "1",
        "-c",
        "4",
        "--users",
        "4",
        "--quiet",
        "--json",
        report.to_str().unwrap(),
    ];
    let env =
        [("BOXOFFICE_AUTH__ARGON2_MEMORY_KIB", "64"), ("BOXOFFICE_AUTH__ARGON2_ITERATIONS", "1"), ("RUST_LOG", "warn")];
    let out = run(dir.path(), &args, &env).await;
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(report["url"].as_str().is_some_and(|u| u.ends_with("(gRPC)")), "{report}");
    // Thirty seats, sold out over gRPC (FAILED_PRECONDITION, tallied as REST's 409), none twice.
    assert_eq!(report["statuses"]["201"], 30, "{report}");
    assert!(report["statuses"]["409"].as_u64().unwrap_or(0) > 0, "{report}");
    let inv = &report["invariant"];
    assert_eq!((inv["holds"].as_bool(), inv["db_held"].as_u64()), (Some(true), Some(30)), "{report}");
}

#[tokio::test]
async fn loadtest_with_a_waiting_room_queues_its_users_and_checks_admission_order_and_that_nobody_skipped_it() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let json = report.to_str().unwrap();
    let args = [
        "loadtest",
        "--scenario",
        "rush",
        "--waiting-room",
        "--admit-per-second",
        "4",
        "--capacity",
        "50",
        "-d",
        "3",
        "-c",
        "8",
        "--users",
        "12",
        "--quiet",
        "--json",
        json,
    ];
    let env =
        [("BOXOFFICE_AUTH__ARGON2_MEMORY_KIB", "64"), ("BOXOFFICE_AUTH__ARGON2_ITERATIONS", "1"), ("RUST_LOG", "warn")];
    let out = run(dir.path(), &args, &env).await;
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let q = &report["queue"];
    assert_eq!(q["joined"], 12, "{report}");
    assert!(q["admitted"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(
        (q["in_join_order"].as_bool(), q["booked_without_admission"].as_u64()),
        (Some(true), Some(0)),
        "{report}"
    );
    // The room was in the way: refusals before admission, and bookings after it.
    assert!(report["statuses"]["403"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(q["refused_queue_required"], report["statuses"]["403"], "{report}");
    assert!(report["statuses"]["201"].as_u64().unwrap_or(0) > 0, "{report}");
}

#[tokio::test]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::common::sqlite_database(dir.path());
    let env = [("BOXOFFICE_DATABASE__URL", url.as_str()), ("RUST_LOG", "info"), ("BOXOFFICE_LOG__FORMAT", "pretty")];
    let out = run(dir.path(), &["migrate"], &env).await;
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("migrations applied"), "{log}");
    assert!(!log.contains('\x1b'), "ANSI escapes in a redirected log: {log:?}");
}

#[tokio::test]
async fn postman_prints_the_collection_for_a_given_base_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["postman", "--base-url", "http://shop.example:9000"], &[("RUST_LOG", "warn")]).await;
    assert!(out.status.success(), "{out:?}");
    let collection: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let base = collection["variable"].as_array().unwrap().iter().find(|v| v["key"] == "baseUrl").unwrap();
    assert_eq!(base["value"], "http://shop.example:9000");
    assert!(collection["item"].as_array().unwrap().len() >= 5, "folders per tag: {collection}");
}
