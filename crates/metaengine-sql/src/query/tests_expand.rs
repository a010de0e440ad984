//! Expansions and filters across references (SPEC §13): their statements' shape on both
//! dialects, the scope and row filter inside each subquery, and the refusals.

use super::tests::{list_query, lite, pg, scope, text};
use super::*;
use metaengine_core::policy::RowFilter;
use metaengine_core::{EntitySchema, compile};
use serde_json::json;

fn model(entity: &str, fields: serde_json::Value) -> CompiledModel {
    let schema: EntitySchema = serde_json::from_value(json!({ "fields": fields })).unwrap();
    compile(entity, "v1", &schema, "admin", "2026-01-01T00:00:00.000Z")
}

fn customer() -> CompiledModel {
    model("Customer", json!([{ "name": "name", "type": "string" }]))
}

fn invoice() -> CompiledModel {
    model(
        "Invoice",
        json!([{ "name": "number", "type": "string" },
               { "name": "customerId", "type": "reference", "referenceTo": "Customer" }]),
    )
}

fn forward<'a>(target: &'a CompiledModel, rows: &'a RowFilter) -> Expansion<'a> {
    Expansion {
        key: "customerId",
        link: Link::Forward {
            field: "customerId",
        },
        target,
        row_filter: rows,
        nested: Vec::new(),
        fields: None,
    }
}

#[test]
fn a_forward_expansion_is_scoped_and_filtered_inside_the_page_statement() {
    let (c, i) = (customer(), invoice());
    let nothing = RowFilter::Nothing;
    let expand = [forward(&c, &nothing)];
    let all = RowFilter::All;
    let q = ListQuery {
        expand: &expand,
        ..list_query(&all)
    };
    // PostgreSQL: a lateral join of the customer's columns, scoped, with its row filter.
    let s = pg(&i).list(&q).unwrap();
    assert!(
        s.sql
            .contains(r#"FROM "core"."ent_invoice" AS "__e0" LEFT JOIN LATERAL (SELECT "#),
        "{}",
        s.sql
    );
    assert!(
        s.sql.contains(r#"FROM "core"."ent_customer" AS "__e1" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "id" = "__e0"."customer_id" AND FALSE) AS "__j0" ON TRUE WHERE "tenant_id" = $3 AND "realm_id" = $4 ORDER BY"#),
        "{}",
        s.sql
    );
    // Every subquery binds the caller's scope itself.
    assert_eq!(
        s.binds,
        [text("acme"), text("main"), text("acme"), text("main")]
    );
    assert!(matches!(&s.expand[0], ExpandColumns::Record { key, .. } if key == "customerId"));
    // SQLite: a subquery inside the record's JSON.
    let s = lite(&i).list(&q).unwrap();
    assert!(
        s.sql.contains(r#"json_insert(json_object("#)
            && s.sql
                .contains(r#"'$.expand', json_object('customerId', json((SELECT json_object("#),
        "{}",
        s.sql
    );
    assert!(s.sql.contains(r#"FROM "ent_customer" AS "__e1" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND "id" = "__e0"."customer_id" AND 0)"#), "{}", s.sql);
    assert!(s.expand.is_empty());
}

#[test]
fn a_reverse_expansion_takes_100_referring_records_by_id() {
    let (c, i) = (customer(), invoice());
    let all = RowFilter::All;
    let expand = [Expansion {
        key: "Invoice_via_customerId",
        link: Link::Reverse {
            field: "customerId",
        },
        target: &i,
        row_filter: &all,
        nested: Vec::new(),
        fields: None,
    }];
    for b in [pg(&c), lite(&c)] {
        let s = b.get(scope(), super::tests::ID1, None, &expand).unwrap();
        assert!(
            s.sql
                .contains(r#""customer_id" = "__e0"."id" ORDER BY "id" LIMIT 100"#),
            "{}",
            s.sql
        );
        assert!(s.sql.contains(r#"ORDER BY "__o")"#), "{}", s.sql);
    }
}

#[test]
fn links_that_are_not_references_between_the_two_models_are_refused() {
    let (c, i) = (customer(), invoice());
    let all = RowFilter::All;
    // `number` is no reference; Customer has no `customerId`.
    for (parent, target, field) in [(&i, &c, "number"), (&c, &i, "customerId")] {
        let expand = [Expansion {
            key: field,
            link: Link::Forward { field },
            target,
            row_filter: &all,
            nested: Vec::new(),
            fields: None,
        }];
        for b in [pg(parent), lite(parent)] {
            let e = b
                .get(scope(), super::tests::ID1, None, &expand)
                .unwrap_err();
            assert!(matches!(e, QueryError::UnknownField { .. }), "{e:?}");
        }
    }
    // Three levels of a self-reference are fine, a fourth is refused.
    let category = model(
        "Category",
        json!([{ "name": "parentId", "type": "reference", "referenceTo": "Category" }]),
    );
    let parent = |nested: Vec<Expansion<'static>>, target: &'static CompiledModel| Expansion {
        key: "parentId",
        link: Link::Forward { field: "parentId" },
        target,
        row_filter: &RowFilter::All,
        nested,
        fields: None,
    };
    let category: &'static CompiledModel = Box::leak(Box::new(category));
    let three = parent(
        vec![parent(vec![parent(Vec::new(), category)], category)],
        category,
    );
    let four = parent(vec![three.clone()], category);
    for b in [pg(category), lite(category)] {
        assert!(
            b.get(
                scope(),
                super::tests::ID1,
                None,
                std::slice::from_ref(&three)
            )
            .is_ok()
        );
        let e = b
            .get(
                scope(),
                super::tests::ID1,
                None,
                std::slice::from_ref(&four),
            )
            .unwrap_err();
        assert!(matches!(e, QueryError::UnknownField { .. }), "{e:?}");
    }
}

#[test]
fn a_filter_across_a_reference_is_an_in_subquery_with_the_targets_scope_and_rows() {
    let (c, i) = (customer(), invoice());
    let nothing = RowFilter::Nothing;
    let filters = [metaengine_core::record::RecordValidator::new(&c)
        .filter("name", "eq", "Acme")
        .unwrap()];
    let related = [Related {
        field: "customerId",
        target: &c,
        row_filter: &nothing,
        filters: &filters,
    }];
    let all = RowFilter::All;
    let s = pg(&i).count(scope(), &all, &[], &related).unwrap();
    assert_eq!(
        s.sql,
        r#"SELECT COUNT(*) AS "count" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "customer_id" IN (SELECT "id" FROM "core"."ent_customer" AS "__f" WHERE "tenant_id" = $3 AND "realm_id" = $4 AND FALSE AND "name" = $5)"#
    );
    assert_eq!(s.binds[4], text("Acme"));
}
