use super::tests::model;
use super::*;

fn parse(field: &str, op: &str, raw: &str) -> Result<Filter, FilterRejected> {
    let model = model();
    let direct = filter_value(&model, field, op, raw);
    assert_eq!(direct, RecordValidator::new(&model).filter(field, op, raw));
    direct
}

fn value(field: &str, op: &str, raw: &str) -> FilterValue {
    let f = parse(field, op, raw).unwrap_or_else(|p| panic!("{field} {op} {raw}: {p}"));
    assert_eq!(f.field, field);
    assert_eq!(f.op.as_str(), op);
    f.value
}

fn problem(field: &str, op: &str, raw: &str) -> Problem {
    parse(field, op, raw).unwrap_err().problem
}

fn one(v: SqlValue) -> FilterValue {
    FilterValue::One(v)
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

#[test]
fn operator_names_round_trip() {
    let names = [
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "nin",
        "contains",
        "startswith",
        "isnull",
    ];
    let ops: Vec<&str> = FilterOp::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(ops, names);
    for op in FilterOp::ALL {
        assert_eq!(FilterOp::parse(op.as_str()), Some(*op));
        assert_eq!(op.to_string(), op.as_str());
    }
    assert_eq!(FilterOp::parse("EQ"), None);
    assert_eq!(FilterOp::parse("startsWith"), None);
}

#[test]
fn every_operator_on_text() {
    for op in [
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "contains",
        "startswith",
    ] {
        assert_eq!(value("notes", op, "a b"), one(text("a b")), "{op}");
    }
    assert_eq!(
        value("status", "in", "draft,sent"),
        FilterValue::Many(vec![text("draft"), text("sent")])
    );
    assert_eq!(
        value("status", "nin", "paid"),
        FilterValue::Many(vec![text("paid")])
    );
    assert_eq!(value("notes", "isnull", "true"), FilterValue::Flag(true));
    assert_eq!(value("notes", "isnull", "false"), FilterValue::Flag(false));
    assert_eq!(value("invoiceNumber", "contains", ""), one(text("")));
}

#[test]
fn values_are_typed() {
    assert_eq!(value("quantity", "gte", "-5"), one(SqlValue::Int(-5)));
    assert_eq!(
        value("quantity", "in", "1,2,3"),
        FilterValue::Many(vec![SqlValue::Int(1), SqlValue::Int(2), SqlValue::Int(3)])
    );
    assert_eq!(value("rate", "lt", "1.5"), one(SqlValue::Float(1.5)));
    assert_eq!(value("totalAmount", "gt", "10.500"), one(text("10.5")));
    assert_eq!(value("paid", "eq", "true"), one(SqlValue::Bool(true)));
    assert_eq!(value("paid", "ne", "false"), one(SqlValue::Bool(false)));
    assert_eq!(
        value("dueDate", "lte", "2024-02-29"),
        one(text("2024-02-29"))
    );
    assert_eq!(
        value("sentAt", "gt", "2026-11-26T22:24:42+01:00"),
        one(text("2026-11-26T21:24:42.000Z"))
    );
    assert_eq!(
        value("customer", "eq", "0192F3A4-5B6C-7D8E-9F00-112233445566"),
        one(text("0192f3a4-5b6c-7d8e-9f00-112233445566"))
    );
    assert_eq!(
        value("meta", "eq", r#"{ "a": 1 }"#),
        one(text(r#"{"a":1}"#))
    );
    assert_eq!(value("meta", "isnull", "true"), FilterValue::Flag(true));
}

#[test]
fn system_fields() {
    assert_eq!(
        value("id", "eq", "0192f3a4-5b6c-7d8e-9f00-112233445566"),
        one(text("0192f3a4-5b6c-7d8e-9f00-112233445566"))
    );
    assert_eq!(
        value("createdAt", "gte", "2026-01-01T00:00:00Z"),
        one(text("2026-01-01T00:00:00.000Z"))
    );
    assert_eq!(
        value("updatedAt", "lt", "2026-01-01T00:00:00.5Z"),
        one(text("2026-01-01T00:00:00.500Z"))
    );
    assert_eq!(value("createdBy", "startswith", "ali"), one(text("ali")));
    assert_eq!(value("updatedBy", "eq", "bob"), one(text("bob")));
    assert_eq!(value("rowVersion", "gt", "3"), one(SqlValue::Int(3)));
    for system in ["tenantId", "realmId"] {
        let p = problem(system, "eq", "x");
        assert_eq!(p.pointer, format!("filter[{system}]"));
        assert_eq!(
            p.message,
            format!("system field `{system}` cannot be used in a filter")
        );
    }
    assert!(
        problem("id", "eq", "42")
            .message
            .starts_with("`id` must be a UUID")
    );
    assert!(
        problem("rowVersion", "eq", "x")
            .message
            .starts_with("`rowVersion` must be an integer")
    );
}

#[test]
fn unknown_field_and_operator() {
    let p = problem("foo", "eq", "1");
    assert_eq!(p.pointer, "filter[foo]");
    assert_eq!(p.message, "unknown field `foo` in a filter");
    let p = problem("notes", "foo", "1");
    assert_eq!(p.pointer, "filter[notes][foo]");
    assert_eq!(
        p.message,
        "unknown filter operator `foo`; expected one of `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `in`, `nin`, `contains`, `startswith`, `isnull`"
    );
}

#[test]
fn operators_that_do_not_apply() {
    for (field, op) in [
        ("quantity", "contains"),
        ("dueDate", "startswith"),
        ("customer", "contains"),
        ("paid", "gt"),
        ("paid", "lte"),
        ("meta", "gte"),
        ("meta", "in"),
        ("meta", "contains"),
        ("rowVersion", "contains"),
    ] {
        let p = problem(field, op, "1");
        assert_eq!(p.pointer, format!("filter[{field}][{op}]"));
        assert!(
            p.message.starts_with(&format!(
                "filter operator `{op}` does not apply to field `{field}` of type"
            )),
            "{}",
            p.message
        );
    }
}

#[test]
fn bad_values() {
    let cases = [
        (
            "quantity",
            "eq",
            "abc",
            "`quantity` must be an integer, found the string `abc`",
        ),
        (
            "quantity",
            "eq",
            "1.5",
            "`quantity` must be an integer, found the string `1.5`",
        ),
        (
            "quantity",
            "in",
            "1,x",
            "`quantity` must be an integer, found the string `x`",
        ),
        ("quantity", "in", "", "`in` needs at least one value"),
        (
            "rate",
            "gt",
            "NaN",
            "`rate` must be a finite number, found the string `NaN`",
        ),
        (
            "rate",
            "gt",
            "inf",
            "`rate` must be a finite number, found the string `inf`",
        ),
        (
            "totalAmount",
            "eq",
            "1e3",
            "`totalAmount` must be a decimal number such as `12.50`, found the string `1e3`",
        ),
        (
            "paid",
            "eq",
            "yes",
            "`paid` must be `true` or `false`, found the string `yes`",
        ),
        (
            "dueDate",
            "eq",
            "2026-13-01",
            "`dueDate` must be a date (YYYY-MM-DD), found the string `2026-13-01`",
        ),
        (
            "dueDate",
            "eq",
            "2026-02-29",
            "`dueDate` must be a date (YYYY-MM-DD), found the string `2026-02-29`",
        ),
        (
            "notes",
            "isnull",
            "1",
            "`isnull` takes `true` or `false`, found `1`",
        ),
        (
            "meta",
            "eq",
            "{",
            "`meta` must be a JSON document, found the string `{`",
        ),
    ];
    for (field, op, raw, want) in cases {
        let p = problem(field, op, raw);
        assert_eq!(p.pointer, format!("filter[{field}][{op}]"));
        assert_eq!(p.message, want);
    }
    assert!(
        problem("sentAt", "gt", "2026-11-26")
            .message
            .starts_with("`sentAt` must be an RFC 3339 timestamp")
    );
    let many = vec!["1"; MAX_LIST_VALUES + 1].join(",");
    assert_eq!(
        problem("quantity", "in", &many).message,
        "`in` takes at most 100 values"
    );
    let max = vec!["1"; MAX_LIST_VALUES].join(",");
    assert!(
        matches!(value("quantity", "nin", &max), FilterValue::Many(v) if v.len() == MAX_LIST_VALUES)
    );
}

#[test]
fn filter_keys() {
    assert_eq!(
        parse_filter_key("filter[status][eq]"),
        Some(("status", "eq"))
    );
    assert_eq!(parse_filter_key("filter[a][isnull]"), Some(("a", "isnull")));
    for bad in [
        "filter[status]",
        "filter[][eq]",
        "filter[a][]",
        "filter[a][b][c]",
        "filters[a][eq]",
        "page",
        "filter[a]x[eq]",
    ] {
        assert_eq!(parse_filter_key(bad), None, "{bad}");
    }
}

#[test]
fn refusals_carry_their_code() {
    use crate::ErrorCode;
    assert_eq!(
        parse("nope", "eq", "1").unwrap_err().code,
        ErrorCode::UnknownField
    );
    for (op, raw) in [("zz", "1"), ("isnull", "maybe")] {
        let e = parse("invoiceNumber", op, raw).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidFilter, "{op} {raw}");
    }
}
