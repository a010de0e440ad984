//! How results and errors look on the terminal.

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use metaengine_runtime::{DataError, RegistryError};
use serde::Serialize;

/// Prints an error and its causes to stderr; validation problems one per line with their pointer.
pub fn print_error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
    if let Some(RegistryError::Invalid { errors, .. } | RegistryError::Conflict { errors, .. }) =
        e.downcast_ref::<RegistryError>()
    {
        if errors.len() > 1 {
            for p in errors {
                eprintln!("  at {}: {}", pointer_label(&p.pointer), p.message);
            }
        } else if let Some(p) = errors.first().filter(|p| !p.pointer.is_empty()) {
            eprintln!("  at {}", p.pointer);
        }
    }
    if let Some(DataError::Invalid { errors } | DataError::BadRequest { errors, .. }) =
        e.downcast_ref::<DataError>()
    {
        for p in errors.iter().filter(|p| !p.pointer.is_empty()) {
            eprintln!("  at {}: {}", p.pointer, p.message);
        }
    }
}

fn pointer_label(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(document)"
    } else {
        pointer
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A table with a header row, sized to the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// `-` for a missing value.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}
