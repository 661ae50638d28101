//! The reference documentation against the code: every bus example in
//! CONTRACT.md passes the validator on the topic it names, the first example
//! of each kind is the one the code defines, every JSON block parses, and
//! every reject reason, message kind, update kind and default setting the
//! code has is named in the docs.
//!
//! Convention: a bus example is a ```json block whose preceding non-blank
//! line is `Topic: \`city/...\``.

use std::path::Path;

use kendali::config::{HubSettings, IngestSettings};
use kendali::contract::{self, decode, Limits, MessageKind, RejectReason};
use kendali::state::UpdateKind;

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// One fenced JSON block: the line it starts on, the topic named right before it (if any), its text.
struct Block {
    line: usize,
    topic: Option<String>,
    text: String,
}

fn json_blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut topic: Option<String> = None;
    let mut open: Option<Block> = None;
    for (i, line) in md.lines().enumerate() {
        let t = line.trim();
        if let Some(b) = open.as_mut() {
            if t == "```" {
                out.push(open.take().expect("a block is open"));
            } else {
                b.text.push_str(line);
                b.text.push('\n');
            }
            continue;
        }
        if t == "```json" {
            open = Some(Block {
                line: i + 1,
                topic: topic.take(),
                text: String::new(),
            });
        } else if let Some(rest) = t.strip_prefix("Topic: `") {
            topic = rest.split('`').next().map(str::to_owned);
        } else if !t.is_empty() {
            topic = None;
        }
    }
    assert!(open.is_none(), "a ```json block is not closed");
    out
}

/// The bus examples of CONTRACT.md, decoded as ingest would (any ts in the past is fine).
fn contract_examples() -> Vec<(usize, kendali::contract::Topic, contract::Message)> {
    let limits = Limits {
        max_future: chrono::Duration::days(36500),
        ..Default::default()
    };
    json_blocks(&doc("CONTRACT.md"))
        .into_iter()
        .filter_map(|b| {
            let topic = b.topic?;
            match decode(&topic, b.text.as_bytes(), &limits, chrono::Utc::now()) {
                Ok((t, m)) => Some((b.line, t, m)),
                Err(r) => panic!(
                    "CONTRACT.md line {}: the example for {topic} is refused: {r}",
                    b.line
                ),
            }
        })
        .collect()
}

#[test]
fn every_bus_example_in_the_contract_passes_validation_on_its_topic() {
    let examples = contract_examples();
    assert!(
        examples.len() >= MessageKind::ALL.len(),
        "CONTRACT.md has only {} bus examples",
        examples.len()
    );
}

#[test]
fn every_message_kind_has_an_example_and_the_first_is_the_one_the_code_defines() {
    let examples = contract_examples();
    for kind in MessageKind::ALL {
        let (line, topic, msg) = examples
            .iter()
            .find(|(_, t, _)| t.kind() == kind)
            .unwrap_or_else(|| panic!("CONTRACT.md has no example of {}", kind.as_str()));
        let ts = msg.ts().unwrap_or_else(|| {
            panic!(
                "CONTRACT.md line {line}: the first {} example needs a ts",
                kind.as_str()
            )
        });
        let (want_topic, want_msg) = contract::messages::example(kind, ts);
        assert_eq!(
            (topic, msg),
            (&want_topic, &want_msg),
            "CONTRACT.md line {line}: differs from messages::example({kind:?})"
        );
    }
}

#[test]
fn every_json_block_of_both_documents_is_valid_json() {
    for name in ["CONTRACT.md", "PROTOCOL.md"] {
        for b in json_blocks(&doc(name)) {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&b.text) {
                panic!("{name} line {}: not JSON: {e}", b.line);
            }
        }
    }
}

#[test]
fn the_contract_names_every_reject_reason_and_message_kind() {
    let md = doc("CONTRACT.md");
    for r in RejectReason::ALL {
        assert!(
            md.contains(&format!("`{}`", r.as_str())),
            "CONTRACT.md does not name the reject reason `{}`",
            r.as_str()
        );
    }
    for k in MessageKind::ALL {
        assert!(
            md.contains(&format!("`{}`", k.as_str())),
            "CONTRACT.md does not name the message kind `{}`",
            k.as_str()
        );
    }
}

#[test]
fn the_protocol_names_every_update_kind() {
    let md = doc("PROTOCOL.md");
    for k in UpdateKind::ALL {
        assert!(
            md.contains(&format!("`{}`", k.as_str())),
            "PROTOCOL.md does not name the update kind `{}`",
            k.as_str()
        );
    }
}

/// Asserts that `md` has a table row `| \`{section}.{key}\` | \`{default}\` |` for every field.
fn documents_defaults<T: serde::Serialize>(md: &str, name: &str, section: &str, defaults: &T) {
    let v = serde_json::to_value(defaults).expect("settings serialise");
    for (k, v) in v.as_object().expect("settings are a table") {
        let row = format!("| `{section}.{k}` | `{v}` |");
        assert!(
            md.contains(&row),
            "{name} lacks the row {row:?} (a default changed or a setting is new)"
        );
    }
}

#[test]
fn the_protocol_states_every_hub_setting_with_its_default() {
    documents_defaults(
        &doc("PROTOCOL.md"),
        "PROTOCOL.md",
        "hub",
        &HubSettings::default(),
    );
}

#[test]
fn the_contract_states_every_ingest_limit_with_its_default() {
    documents_defaults(
        &doc("CONTRACT.md"),
        "CONTRACT.md",
        "ingest",
        &IngestSettings::default(),
    );
}

/// `md` from the first place `after` stands.
fn from<'a>(md: &'a str, after: &str) -> &'a str {
    let at = md
        .find(after)
        .unwrap_or_else(|| panic!("the document has no {after:?}"));
    &md[at..]
}

/// The fenced block of `lang` that follows the first line containing `after`.
fn fenced_block_after(md: &str, after: &str, lang: &str) -> String {
    let rest = from(md, after);
    let open = format!("```{lang}\n");
    let start = rest
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{lang} block after {after:?}"))
        + open.len();
    let len = rest[start..].find("\n```").expect("the block is closed");
    rest[start..start + len].to_owned()
}

/// The rows of the markdown table that follows the first line containing `after`.
fn table_after(md: &str, after: &str) -> Vec<Vec<String>> {
    let rest = from(md, after);
    rest.lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// README's settings file is a valid settings file whose every value is the
/// default, and it names every setting (those unset by default in a comment).
#[test]
fn the_readme_settings_block_is_every_setting_with_its_default() {
    let md = doc("README.md");
    let block = fenced_block_after(&md, "A settings file with every section", "toml");
    let parsed: kendali::config::Settings = toml::from_str(&block)
        .unwrap_or_else(|e| panic!("README's settings block is not a valid settings file: {e}"));
    let want = serde_json::to_value(kendali::config::Settings::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&parsed).unwrap(),
        want,
        "README's settings block differs from the defaults"
    );
    let table: toml::Table = toml::from_str(&block).unwrap();
    for (section, fields) in want.as_object().unwrap() {
        for (key, default) in fields.as_object().unwrap() {
            let written = table.get(section).and_then(|t| t.get(key)).is_some();
            let commented = default.is_null() && block.contains(&format!("{key} ="));
            assert!(
                written || commented,
                "README's settings block does not name {section}.{key}"
            );
        }
    }
}

/// The commands table of README names every subcommand `kendali --help`
/// lists, and nothing else.
#[test]
fn the_readme_commands_table_names_every_command() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_kendali"))
        .arg("--help")
        .output()
        .expect("kendali --help runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let code: std::collections::BTreeSet<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(code.len() >= 7, "kendali --help lists {code:?}");
    let md = doc("README.md");
    let documented: std::collections::BTreeSet<String> = table_after(&md, "## Commands")
        .iter()
        .flat_map(|row| {
            row[0]
                .split('`')
                .filter_map(|cell| cell.strip_prefix("kendali "))
                .filter_map(|rest| rest.split_whitespace().next().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        documented, code,
        "README's commands table against `kendali --help`"
    );
}

/// Every route the web modules define is in README's "Screens and API"
/// table, and every path there is a route (the static assets aside).
#[test]
fn the_readme_routes_are_the_routes_of_the_code() {
    let code: std::collections::BTreeSet<String> = crate::support::declared_routes()
        .into_iter()
        // The static assets: web/'s files, not an API.
        .filter(|(_, path)| !path.starts_with("/{path"))
        .map(|(method, path)| {
            let method = if method == "GET" { "" } else { method.as_str() };
            format!("{method} {path}").trim().to_owned()
        })
        .collect();
    assert!(code.len() >= 15, "routes found in src/web: {code:?}");
    let md = doc("README.md");
    let documented: std::collections::BTreeSet<String> = table_after(&md, "## Screens and API")
        .iter()
        .flat_map(|row| {
            row[0]
                .split(", ")
                .map(|cell| {
                    let cell = cell.trim_matches('`');
                    cell.split('?').next().unwrap().to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        documented, code,
        "README's routes against the route attributes in src/web"
    );
}
