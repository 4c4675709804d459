//! The real `guildgate` binary: what an admin reads at the terminal, and the exit status.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary in `dir` with the given `GUILDGATE__*` variables and none inherited.
pub fn run_guildgate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guildgate"));
    command.args(args).current_dir(dir).env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("GUILDGATE_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("the guildgate binary runs")
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The line the binary ends a failure with (`guildgate: …`).
fn final_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("guildgate: "))
        .unwrap_or_else(|| panic!("no `guildgate:` line in:\n{stderr}"))
}

#[test]
fn serve_with_an_unreachable_database_exits_2_naming_the_masked_url_and_the_cause_once() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();

    // Act
    let output = run_guildgate(
        dir.path(),
        &["serve"],
        &[
            (
                "GUILDGATE__DATABASE__URL",
                "postgres://gg:hunter2@127.0.0.1:1/gg",
            ),
            ("GUILDGATE__DATABASE__CONNECT_TIMEOUT", "0s"),
            ("GUILDGATE__SERVER__LISTEN", "127.0.0.1:0"),
        ],
    );

    // Assert
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let line = final_line(&stderr);
    assert!(
        line.starts_with(
            "guildgate: cannot reach the database at postgres://gg:***@127.0.0.1:1/gg"
        ),
        "{line}"
    );
    assert_eq!(line.matches("Connection refused").count(), 1, "{line}");
    assert!(line.contains("database.connect_timeout"), "{line}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    assert!(output.stdout.is_empty(), "problems go to stderr");
}

#[test]
fn dev_on_a_taken_port_exits_2_and_names_the_port_flag() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    // `dev` binds the demo app's port (--port + 2) first: pick a taken port whose demo port
    // is free, so the failure is the one under test and not another test's ephemeral port.
    let (taken, port) = (0..20)
        .find_map(|_| {
            let taken = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
            let port = taken.local_addr().ok()?.port();
            let demo = port.checked_add(2)?;
            std::net::TcpListener::bind(("127.0.0.1", demo)).ok()?;
            Some((taken, port.to_string()))
        })
        .expect("a taken port with a free demo port");

    // Act
    let output = run_guildgate(dir.path(), &["dev", "--port", &port], &[]);
    drop(taken);

    // Assert
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let line = final_line(&stderr);
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("--port"), "says how to change it: {line}");
    assert_eq!(line.matches("Address already in use").count(), 1, "{line}");
    assert!(stderr.ends_with('\n'), "{stderr:?}");
}

#[test]
fn check_config_lists_problems_on_stderr_ending_with_a_newline_and_exits_1() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();

    // Act
    let output = run_guildgate(
        dir.path(),
        &["check-config"],
        &[
            ("GUILDGATE__ISSUER", "not a url"),
            ("GUILDGATE__DATABASE__CONNECT_TIMEOUT", "soon"),
        ],
    );

    // Assert
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("  - issuer: "), "{stderr}");
    assert!(
        stderr.contains("  - database.connect_timeout: "),
        "{stderr}"
    );
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    assert!(output.stdout.is_empty(), "{}", stdout_of(&output));
}

#[test]
fn check_config_of_a_valid_configuration_says_so_on_stdout_and_warns_on_stderr() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();

    // Act
    let output = run_guildgate(dir.path(), &["check-config"], &[]);

    // Assert
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "configuration is valid\n");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("warning: discord.client_id"), "{stderr}");
    assert!(stderr.ends_with('\n'), "{stderr:?}");
}

#[test]
fn a_mistyped_command_exits_1_with_usage_on_stderr() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();

    // Act
    let output = run_guildgate(dir.path(), &["serv"], &[]);

    // Assert
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("serve"), "suggests the command");
    assert!(output.stdout.is_empty());
}

#[test]
fn help_lists_the_exit_codes_and_every_command_shows_an_example() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &["serve"],
        &["dev"],
        &["migrate"],
        &["keys", "list"],
        &["keys", "rotate"],
        &["sessions", "list"],
        &["users", "revoke"],
        &["users", "forget-consent"],
        &["users", "show"],
        &["clients", "add"],
        &["clients", "list"],
        &["hash-secret"],
        &["check-config"],
        &["healthcheck"],
    ];

    // Act
    let top = run_guildgate(dir.path(), &["--help"], &[]);
    let helps: Vec<(String, Output)> = commands
        .iter()
        .map(|c| {
            let mut args = c.to_vec();
            args.push("--help");
            (c.join(" "), run_guildgate(dir.path(), &args, &[]))
        })
        .collect();

    // Assert
    assert_eq!(top.status.code(), Some(0));
    let top = stdout_of(&top);
    for code in ["  0  ", "  1  ", "  2  "] {
        assert!(top.contains(code), "exit code {code:?} documented:\n{top}");
    }
    for (command, output) in helps {
        let help = stdout_of(&output);
        assert_eq!(output.status.code(), Some(0), "{command}");
        assert!(
            help.contains("Example") && help.contains("guildgate "),
            "`{command} --help` shows an example:\n{help}"
        );
    }
}

#[test]
fn migrate_dry_run_before_any_database_exists_lists_every_migration_and_creates_nothing() {
    // Arrange: the default configuration (SQLite at data/guildgate.db) in a fresh folder.
    let dir = tempfile::tempdir().unwrap();

    // Act
    let output = run_guildgate(dir.path(), &["migrate", "--dry-run"], &[]);

    // Assert
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout.contains("would apply"), "{stdout}");
    assert!(
        stdout.contains("0001 "),
        "the first migration is listed: {stdout}"
    );
    assert!(
        !dir.path().join("data").join("guildgate.db").exists(),
        "a dry run creates no database"
    );
}
