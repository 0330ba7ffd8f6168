//! The command line: configuration mistakes end in one clear line and a non-zero exit, never a
//! panic; the admin commands set a company up end to end.

use std::process::Command;

fn switchboard(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_ADMIN_TOKEN")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("RUST_LOG", "error");
    command
}

#[test]
fn bad_configuration_is_reported_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            vec![("DATABASE_URL", "mysql://localhost/db")],
            "unsupported scheme",
        ),
        (vec![("DATABASE_URL", "::not a url::")], "not a valid URL"),
        (vec![("SWITCHBOARD_LISTEN", "localhost-ish")], "invalid"),
        (
            vec![("SWITCHBOARD_COMPANY_EMAIL_AFTER", "soon")],
            "30s, 15m, 1h",
        ),
        (
            vec![("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")],
            "cannot connect to the database",
        ),
    ];
    for (env, expected) in cases {
        let mut command = switchboard(dir.path());
        command.arg("migrate");
        for (key, value) in &env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{env:?} should fail");
        assert_eq!(
            output.status.code(),
            Some(if expected == "cannot connect to the database" {
                1
            } else {
                2
            }),
            "{env:?}: {stderr}"
        );
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{env:?}: {stderr}");
    }
}

#[test]
fn admin_commands_set_up_a_company() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = switchboard(dir.path()).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(run(&["migrate"]).contains("migrations applied"));
    let created = run(&[
        "admin",
        "create-company",
        "--name",
        "Pizza Place",
        "--email",
        "boss@pizza.example",
        "--city",
        "Omsk",
        "--timezone",
        "Asia/Omsk",
    ]);
    assert!(created.contains("created company 1"), "{created}");
    assert!(run(&[
        "admin",
        "create-branch",
        "--company-id",
        "1",
        "--name",
        "Center",
        "--city",
        "Omsk",
        "--timezone",
        "Asia/Omsk"
    ])
    .contains("created branch 1"));
    assert!(run(&[
        "admin",
        "create-operator",
        "--company-id",
        "1",
        "--name",
        "Kate",
        "--email",
        "kate@pizza.example",
        "--password",
        "pizza-secret",
        "--branch-ids",
        "1"
    ])
    .contains("created operator 1"));
    assert!(run(&["admin", "list-companies"]).contains("Pizza Place"));
    let demo = run(&["demo"]);
    assert!(demo.contains("operator@demo.switchboard.local"), "{demo}");
    assert_eq!(run(&["demo"]), demo, "the demo login stays the same");

    // Mistakes are explained.
    let output = switchboard(dir.path())
        .args([
            "admin",
            "create-branch",
            "--company-id",
            "99",
            "--name",
            "X",
            "--city",
            "Y",
            "--timezone",
            "UTC",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("there is no company 99"));
    let output = switchboard(dir.path())
        .args([
            "admin",
            "create-company",
            "--name",
            "X",
            "--email",
            "x@y.z",
            "--timezone",
            "Nowhere/City",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("timezone: must be an IANA time zone"));
}
