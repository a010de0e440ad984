//! CSV cells as record values: how `metaengine data import --format csv` reads a row, typed by
//! the fields under the header (pure; the importer checks the header against the entity).

use serde_json::{Map, Value};

use crate::schema::FieldType;
use crate::validate::Problem;

/// The fields under the columns of a CSV header, in header order, with their types: converts a
/// row's cells into a record. An empty cell is an absent field; an integer or number cell
/// becomes a JSON number, `true`/`false` (any case) a boolean, a json field's cell is parsed as
/// JSON; every other cell stays text (a decimal keeps its digits). A cell that does not convert
/// stays text, so the validators report it with the field's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    columns: Vec<(String, FieldType)>,
}

impl CsvColumns {
    /// The columns of a header: each field's name and type, in header order (the caller checked
    /// that they are fields of the entity).
    pub fn new(columns: Vec<(String, FieldType)>) -> Self {
        Self { columns }
    }

    /// The record of one row's cells.
    pub fn record<'c>(
        &self,
        cells: impl IntoIterator<Item = &'c str>,
    ) -> Result<Value, Vec<Problem>> {
        let mut record = Map::new();
        let mut problems = Vec::new();
        let mut count = 0;
        for cell in cells {
            count += 1;
            let Some((name, ty)) = self.columns.get(count - 1) else {
                continue;
            };
            if cell.is_empty() {
                continue;
            }
            match cell_value(*ty, cell) {
                Ok(value) => {
                    record.insert(name.clone(), value);
                }
                Err(why) => {
                    problems.push(Problem::new(format!("/{name}"), format!("`{name}` {why}")))
                }
            }
        }
        if count != self.columns.len() {
            problems.push(Problem::new(
                "",
                format!(
                    "the row has {count} cells; the header has {}",
                    self.columns.len()
                ),
            ));
        }
        if problems.is_empty() {
            Ok(Value::Object(record))
        } else {
            Err(problems)
        }
    }
}

fn cell_value(ty: FieldType, cell: &str) -> Result<Value, String> {
    let number = |text: &str| {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
    };
    Ok(match ty {
        FieldType::Integer | FieldType::Number => {
            number(cell).unwrap_or_else(|| Value::String(cell.to_owned()))
        }
        FieldType::Boolean => match cell.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(cell.to_owned()),
        },
        FieldType::Json => {
            serde_json::from_str(cell).map_err(|e| format!("must hold a JSON document: {e}"))?
        }
        FieldType::Decimal => Value::String(cell.trim().to_owned()),
        _ => Value::String(cell.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns() -> CsvColumns {
        CsvColumns::new(vec![
            ("n".into(), FieldType::Integer),
            ("x".into(), FieldType::Number),
            ("b".into(), FieldType::Boolean),
            ("j".into(), FieldType::Json),
            ("d".into(), FieldType::Decimal),
            ("s".into(), FieldType::String),
        ])
    }

    #[test]
    fn cells_become_typed_values_and_empty_cells_are_absent() {
        let record = columns()
            .record(["42", "1.5", "TRUE", r#"{"a":[1]}"#, " 10.50 ", " keep "])
            .unwrap();
        assert_eq!(
            record,
            json!({ "n": 42, "x": 1.5, "b": true, "j": { "a": [1] }, "d": "10.50", "s": " keep " })
        );
        let record = columns().record(["", "", "", "", "", "x"]).unwrap();
        assert_eq!(record, json!({ "s": "x" }));
    }

    #[test]
    fn cells_that_do_not_convert_stay_text_for_the_validators_to_name() {
        let record = columns()
            .record(["4.5", "abc", "yes", "1", "1e3", "s"])
            .unwrap();
        assert_eq!(
            record,
            json!({ "n": 4.5, "x": "abc", "b": "yes", "j": 1, "d": "1e3", "s": "s" })
        );
        let problems = columns()
            .record(["1", "1", "true", "{nope", "1", "s"])
            .unwrap_err();
        assert_eq!(problems[0].pointer, "/j");
        let problems = columns().record(["1", "2"]).unwrap_err();
        assert!(problems[0].message.contains("2 cells"), "{problems:?}");
        let problems = columns()
            .record(["1", "1", "true", "1", "1", "s", "extra"])
            .unwrap_err();
        assert!(problems[0].message.contains("7 cells"), "{problems:?}");
    }
}
