//! Conversion rules per field type: what each rule accepts (boundaries included) and refuses.

use super::tests::{get, invalid, model, ok, text, v};
use super::*;
use serde_json::json;

#[test]
fn text_rules() {
    // maxLength counts characters, not bytes.
    assert_eq!(
        ok("invoiceNumber", json!("INV-éééééééé")),
        text("INV-éééééééé")
    );
    let msg = invalid("invoiceNumber", json!("INV-ééééééééé"));
    assert_eq!(msg, "`invoiceNumber` is longer than 12 characters");
    assert_eq!(ok("notes", json!("日本")), text("日本"));
    assert_eq!(ok("notes", json!("日本語日本")), text("日本語日本"));
    assert_eq!(
        invalid("notes", json!("日")),
        "`notes` is shorter than 2 characters"
    );
    assert_eq!(
        invalid("notes", json!("日本語日本語")),
        "`notes` is longer than 5 characters"
    );
    assert_eq!(
        invalid("notes", json!(12)),
        "`notes` must be a string, found the number `12`"
    );
    assert_eq!(
        invalid("status", json!("Draft")),
        "`status` must be one of `draft`, `sent`, `paid`"
    );
    // A sensitive field's value is never echoed.
    assert_eq!(invalid("secret", json!(1)), "`secret` must be a string");
    assert_eq!(
        invalid("secret", json!("abcd")),
        "`secret` is longer than 3 characters"
    );
}

#[test]
fn integer_rules() {
    assert_eq!(ok("quantity", json!(1)), SqlValue::Int(1));
    assert_eq!(ok("quantity", json!(100)), SqlValue::Int(100));
    assert_eq!(
        invalid("quantity", json!(0)),
        "`quantity` must be at least 1"
    );
    assert_eq!(
        invalid("quantity", json!(101)),
        "`quantity` must be at most 100"
    );
    assert_eq!(
        invalid("quantity", json!(1.5)),
        "`quantity` must be an integer, found the number `1.5`"
    );
    assert!(invalid("quantity", json!(2.0)).starts_with("`quantity` must be an integer"));
    assert!(invalid("quantity", json!("5")).starts_with("`quantity` must be an integer"));
    assert!(invalid("quantity", json!(u64::MAX)).contains("between -9223372036854775808"));
    assert_eq!(ok("priority", json!(i64::MAX)), SqlValue::Int(i64::MAX));
    assert_eq!(ok("priority", json!(i64::MIN)), SqlValue::Int(i64::MIN));
}

#[test]
fn number_rules() {
    assert_eq!(ok("rate", json!(0.5)), SqlValue::Float(0.5));
    assert_eq!(ok("rate", json!(2.5)), SqlValue::Float(2.5));
    assert_eq!(ok("rate", json!(2)), SqlValue::Float(2.0));
    assert_eq!(invalid("rate", json!(0.49)), "`rate` must be at least 0.5");
    assert_eq!(invalid("rate", json!(2.51)), "`rate` must be at most 2.5");
    assert!(invalid("rate", json!("1")).starts_with("`rate` must be a finite number"));
}

#[test]
fn decimal_rules() {
    // Written with exactly the field's scale (2), as PostgreSQL shows numeric(8,2).
    assert_eq!(ok("totalAmount", json!("100.5")), text("100.50"));
    assert_eq!(ok("totalAmount", json!("100.50")), text("100.50"));
    assert_eq!(ok("totalAmount", json!("007.10")), text("7.10"));
    assert_eq!(ok("totalAmount", json!(1e2)), text("100.00"));
    assert_eq!(ok("totalAmount", json!(12.25)), text("12.25"));
    assert_eq!(ok("totalAmount", json!(0)), text("0.00"));
    assert_eq!(ok("totalAmount", json!("-0.00")), text("0.00"));
    // min and max exactly, compared on the decimal text.
    assert_eq!(ok("totalAmount", json!("0")), text("0.00"));
    assert_eq!(ok("totalAmount", json!("100000.50")), text("100000.50"));
    assert_eq!(
        invalid("totalAmount", json!("100000.51")),
        "`totalAmount` must be at most 100000.5"
    );
    assert_eq!(
        invalid("totalAmount", json!("-0.01")),
        "`totalAmount` must be at least 0"
    );
    // Scale and digits before the point (precision 8, scale 2 → 6 before).
    assert_eq!(
        invalid("totalAmount", json!("1.125")),
        "`totalAmount` has more than 2 decimal places"
    );
    assert_eq!(
        invalid("totalAmount", json!(1.125)),
        "`totalAmount` has more than 2 decimal places"
    );
    assert_eq!(
        invalid("totalAmount", json!("1000000")),
        "`totalAmount` has more than 6 digits before the decimal point (precision 8, scale 2)"
    );
    assert_eq!(ok("whole", json!("99999")), text("99999"));
    assert_eq!(ok("whole", json!("-99999.0")), text("-99999"));
    assert_eq!(
        invalid("whole", json!("100000")),
        "`whole` has more than 5 digits before the decimal point (precision 5, scale 0)"
    );
    assert_eq!(
        invalid("whole", json!("1.5")),
        "`whole` must be a whole number (scale 0)"
    );
    for bad in [
        json!("1e2"),
        json!("+1"),
        json!(".5"),
        json!("1."),
        json!(" 1"),
        json!("1,5"),
        json!(true),
    ] {
        let msg = invalid("totalAmount", bad.clone());
        assert!(
            msg.starts_with("`totalAmount` must be a decimal number or a numeric string"),
            "{bad}: {msg}"
        );
    }
    // A JSON number with more digits than an f64 keeps exactly is refused.
    let msg = invalid("totalAmount", json!(0.1 + 0.2));
    assert!(msg.contains("send it as a string"), "{msg}");
}

#[test]
fn decimal_precision_is_exact_with_long_strings() {
    let mut schema_model = model();
    let field = schema_model
        .fields
        .iter_mut()
        .find(|f| f.name == "totalAmount")
        .unwrap();
    field.validator.precision = Some(40);
    field.validator.scale = Some(20);
    field.validator.max = None;
    let v = RecordValidator::new(&schema_model);
    let long = "12345678901234567890.12345678901234567891";
    let input = json!({ "invoiceNumber": "INV-1", "totalAmount": long });
    let values = v.prepare_create(&input).unwrap();
    assert_eq!(get(&values, "totalAmount"), Some(text(long)));
    let input = json!({ "invoiceNumber": "INV-1", "totalAmount": "123456789012345678901.5" });
    assert!(v.prepare_create(&input).is_err());
}

#[test]
fn canonical_decimals() {
    use super::decimal::canonical;
    let cases = [
        ("0", "0"),
        ("-0", "0"),
        ("000", "0"),
        ("0.000", "0"),
        ("1.0", "1"),
        ("-12.340", "-12.34"),
        ("0.05", "0.05"),
        ("1e2", "100"),
        ("1.5e1", "15"),
        ("1.5E-3", "0.0015"),
        ("-2.5e+2", "-250"),
        ("123e-2", "1.23"),
        ("1e-7", "0.0000001"),
        ("0e5", "0"),
    ];
    for (input, want) in cases {
        assert_eq!(canonical(input, true).as_deref(), Some(want), "{input}");
    }
    for bad in ["", "-", "e5", "1e", "1e+", "1.e5", "1e9999", "1.2.3", "--1"] {
        assert_eq!(canonical(bad, true), None, "{bad}");
    }
    assert_eq!(canonical("1e2", false), None);
}

#[test]
fn boolean_rules() {
    assert_eq!(ok("paid", json!(false)), SqlValue::Bool(false));
    for bad in [json!(1), json!("true"), json!(0)] {
        assert!(invalid("paid", bad).starts_with("`paid` must be a boolean"));
    }
}

#[test]
fn date_rules() {
    assert_eq!(ok("dueDate", json!("2024-02-29")), text("2024-02-29"));
    assert_eq!(ok("dueDate", json!("2000-02-29")), text("2000-02-29"));
    assert_eq!(ok("dueDate", json!("0001-01-01")), text("0001-01-01"));
    assert_eq!(ok("dueDate", json!("9999-12-31")), text("9999-12-31"));
    for bad in [
        "2026-02-29",
        "1900-02-29",
        "2026-13-01",
        "2026-04-31",
        "0000-01-01",
        "2026-1-01",
        "2026-01-01T00:00:00Z",
        "+2026-01-01",
        "２０２６-01-01",
    ] {
        let msg = invalid("dueDate", json!(bad));
        assert!(
            msg.starts_with("`dueDate` must be a date (YYYY-MM-DD)"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn datetime_rules() {
    let cases = [
        ("2026-11-26T21:24:42.123Z", "2026-11-26T21:24:42.123Z"),
        ("2026-11-26T21:24:42Z", "2026-11-26T21:24:42.000Z"),
        ("2026-11-26t21:24:42z", "2026-11-26T21:24:42.000Z"),
        ("2026-11-26T22:24:42.123+01:00", "2026-11-26T21:24:42.123Z"),
        ("2026-11-26T16:24:42.5-05:00", "2026-11-26T21:24:42.500Z"),
        (
            "2026-11-27T02:54:42.123456+05:30",
            "2026-11-26T21:24:42.123Z",
        ),
        ("2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00.000Z"),
    ];
    for (input, want) in cases {
        assert_eq!(ok("sentAt", json!(input)), text(want), "{input}");
    }
    for bad in [
        "2026-11-26",
        "2026-11-26T10:00:00",
        "2026-11-26T10:00Z",
        "2026-11-26T24:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-26T10:00:00+0100",
        "0001-01-01T00:30:00+01:00",
        // A leap second: SQLite would keep `:60`, PostgreSQL the next minute (issue 12 item 26).
        "2016-12-31T23:59:60Z",
        "2016-12-31T23:59:60.500Z",
    ] {
        let msg = invalid("sentAt", json!(bad));
        assert!(msg.starts_with("`sentAt` must"), "{bad}: {msg}");
    }
}

#[test]
fn reference_rules_and_references() {
    let id = "0192F3A4-5B6C-7D8E-9F00-112233445566";
    assert_eq!(ok("customer", json!(id)), text(&id.to_ascii_lowercase()));
    for bad in [
        "0192f3a45b6c7d8e9f00112233445566",
        "0192f3a4-5b6c-7d8e-9f00-11223344556g",
        "{0192f3a4-5b6c-7d8e-9f00-112233445566}",
        "",
    ] {
        let msg = invalid("customer", json!(bad));
        assert!(msg.starts_with("`customer` must be a UUID"), "{bad}: {msg}");
    }
    let v = v();
    let values = v
        .prepare_update(&json!({ "customer": id, "notes": "abc" }))
        .unwrap();
    let refs = v.references(&values);
    assert_eq!(
        refs,
        [Reference {
            field: "customer",
            entity: "Customer",
            id: "0192f3a4-5b6c-7d8e-9f00-112233445566",
        }]
    );
    let values = v.prepare_update(&json!({ "customer": null })).unwrap();
    assert!(v.references(&values).is_empty());
}

#[test]
fn json_values_are_serialized() {
    assert_eq!(
        ok("meta", json!({ "b": [1, "x"], "a": null })),
        text(r#"{"b":[1,"x"],"a":null}"#)
    );
    assert_eq!(ok("meta", json!("s")), text(r#""s""#));
    assert_eq!(ok("meta", json!(false)), text("false"));
}
