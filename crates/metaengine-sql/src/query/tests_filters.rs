//! Every filter operator, on both dialects; errors; injection attempts.

use super::tests::{ID1, invoice, lite, pg, scope, text};
use super::*;

fn f(field: &str, op: FilterOp, value: FilterValue) -> Filter {
    Filter {
        field: field.to_owned(),
        op,
        value,
    }
}

fn one(field: &str, op: FilterOp, v: SqlValue) -> Filter {
    f(field, op, FilterValue::One(v))
}

/// The filter's condition and binds (after the scope's two), on PostgreSQL then SQLite.
fn render(filter: Filter) -> [(String, Vec<SqlValue>); 2] {
    let m = invoice();
    let filters = [filter];
    [pg(&m), lite(&m)].map(|b| {
        let s = b.count(scope(), &RowFilter::All, &filters, &[]).unwrap();
        let cond = s.sql.split_once(r#""realm_id" = "#).unwrap().1;
        let cond = cond.split_once(" AND ").unwrap().1.to_owned();
        (cond, s.binds.into_iter().skip(2).collect())
    })
}

fn sqls(filter: Filter) -> [String; 2] {
    render(filter).map(|(sql, _)| sql)
}

#[test]
fn comparison_operators() {
    let cases = [
        (FilterOp::Eq, "=", "="),
        (FilterOp::Ne, "<>", "<>"),
        (FilterOp::Gt, ">", ">"),
        (FilterOp::Gte, ">=", ">="),
        (FilterOp::Lt, "<", "<"),
        (FilterOp::Lte, "<=", "<="),
    ];
    for (op, sign, _) in cases {
        let [p, l] = render(one("dueDate", op, text("2026-11-26")));
        assert_eq!(p.0, format!(r#""due_date" {sign} $3::date"#));
        assert_eq!(l.0, format!(r#""due_date" {sign} ?3"#));
        assert_eq!(p.1, [text("2026-11-26")]);
    }
    assert_eq!(
        sqls(one("status", FilterOp::Gt, text("d"))),
        [r#""status" COLLATE "C" > $3"#, r#""status" > ?3"#]
    );
    assert_eq!(
        sqls(one("totalAmount", FilterOp::Eq, text("1.5"))),
        [
            r#""total_amount" = $3::numeric"#,
            r#""total_amount" COLLATE "decimal" = ?3"#
        ]
    );
    assert_eq!(
        sqls(one("rowVersion", FilterOp::Lte, SqlValue::Int(4))),
        [r#""row_version" <= $3"#, r#""row_version" <= ?3"#]
    );
    assert_eq!(
        sqls(one("id", FilterOp::Eq, text(ID1))),
        [r#""id" = $3::uuid"#, r#""id" = ?3"#]
    );
}

#[test]
fn list_operators() {
    let many = |op, v: &[&str]| {
        f(
            "status",
            op,
            FilterValue::Many(v.iter().map(|s| text(s)).collect()),
        )
    };
    let [p, l] = render(many(FilterOp::In, &["draft", "paid"]));
    assert_eq!(p.0, r#""status" IN ($3, $4)"#);
    assert_eq!(l.0, r#""status" IN (?3, ?4)"#);
    assert_eq!(l.1, [text("draft"), text("paid")]);
    assert_eq!(
        sqls(many(FilterOp::Nin, &["draft"])),
        [r#""status" NOT IN ($3)"#, r#""status" NOT IN (?3)"#]
    );
    assert_eq!(sqls(many(FilterOp::In, &[])), ["FALSE", "0"]);
    assert_eq!(sqls(many(FilterOp::Nin, &[])), ["TRUE", "1"]);
    let dates = f(
        "dueDate",
        FilterOp::In,
        FilterValue::Many(vec![text("2026-01-01")]),
    );
    assert_eq!(
        sqls(dates),
        [r#""due_date" IN ($3::date)"#, r#""due_date" IN (?3)"#]
    );
}

#[test]
fn text_operators_and_isnull() {
    let [p, l] = render(one("status", FilterOp::Contains, text("ai")));
    assert_eq!(p.0, r#"strpos("status", $3) > 0"#);
    assert_eq!(l.0, r#"instr("status", ?3) > 0"#);
    let [p, l] = render(one("status", FilterOp::StartsWith, text("dr")));
    assert_eq!(
        p,
        (r#"starts_with("status", $3)"#.to_owned(), vec![text("dr")])
    );
    assert_eq!(
        l,
        (
            r#"substr("status", 1, length(?3)) = ?4"#.to_owned(),
            vec![text("dr"), text("dr")]
        )
    );
    let isnull = |b| f("dueDate", FilterOp::IsNull, FilterValue::Flag(b));
    assert_eq!(sqls(isnull(true)), [r#""due_date" IS NULL"#; 2]);
    assert_eq!(sqls(isnull(false)), [r#""due_date" IS NOT NULL"#; 2]);
}

fn error(filter: Filter) -> String {
    let m = invoice();
    let errs = [pg(&m), lite(&m)]
        .map(|b| b.count(scope(), &RowFilter::All, std::slice::from_ref(&filter), &[]));
    let [Err(a), Err(b)] = errs else {
        panic!("accepted: {filter:?}")
    };
    assert_eq!(a, b);
    a.to_string()
}

#[test]
fn operators_that_do_not_apply() {
    assert_eq!(
        error(one("totalAmount", FilterOp::Contains, text("1"))),
        "operator `contains` does not apply to field `totalAmount` of type `decimal`"
    );
    assert_eq!(
        error(one("id", FilterOp::Gt, text(ID1))),
        "operator `gt` does not apply to field `id` of type `reference`"
    );
    assert_eq!(
        error(one("status", FilterOp::In, text("draft"))),
        "operator `in` on field `status` takes a list of values"
    );
    assert_eq!(
        error(f("status", FilterOp::Eq, FilterValue::Flag(true))),
        "operator `eq` on field `status` takes one value"
    );
    assert_eq!(
        error(one("status", FilterOp::Ne, SqlValue::Null)),
        "operator `ne` on field `status` takes no null value (use `isnull`)"
    );
    assert_eq!(
        error(one("dueDate", FilterOp::Eq, text("tomorrow"))),
        "a value for field `dueDate` is not a valid `date`"
    );
    assert_eq!(
        error(one("rowVersion", FilterOp::Eq, text("1"))),
        "a value for field `rowVersion` is not a valid `integer`"
    );
}

#[test]
fn injection_in_values_stays_a_bind() {
    let evil = "x'); DROP TABLE \"ent_invoice\"; --";
    for op in [FilterOp::Eq, FilterOp::Contains, FilterOp::StartsWith] {
        for (sql, binds) in render(one("status", op, text(evil))) {
            assert!(!sql.contains("DROP"), "{sql}");
            assert!(binds.iter().all(|b| *b == text(evil)));
        }
    }
}

#[test]
fn injection_in_names_is_refused() {
    for name in [
        r#"status" = 'x' OR "1"#,
        "status; DROP TABLE x",
        "tenant_id",
        "Status",
    ] {
        assert_eq!(
            error(one(name, FilterOp::Eq, text("x"))),
            format!("unknown field `{name}`")
        );
    }
}

#[test]
fn op_names_round_trip() {
    for op in FilterOp::ALL {
        assert_eq!(FilterOp::parse(op.as_str()), Some(*op));
    }
    assert_eq!(FilterOp::parse("like"), None);
}
