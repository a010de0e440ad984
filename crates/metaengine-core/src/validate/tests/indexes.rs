use super::*;

fn with_indexes(indexes: Value) -> Value {
    json!({
        "fields": [
            {"name": "status", "type": "string"},
            {"name": "dueDate", "type": "date"}
        ],
        "indexes": indexes
    })
}

#[test]
fn indexes_must_be_an_array_of_objects() {
    assert_eq!(
        fails_at(with_indexes(json!("status")), "/indexes"),
        "`indexes` must be an array, found the string `status`"
    );
    fails_at(with_indexes(json!([["status"]])), "/indexes/0");
    passes(with_indexes(json!([])));
}

#[test]
fn index_fields_must_exist() {
    assert_eq!(
        fails_at(
            with_indexes(json!([{"fields": ["status", "-due"]}])),
            "/indexes/0/fields/1"
        ),
        "index field `-due` names `due`, which is neither a field of this entity nor a system field"
    );
    let schema = passes(with_indexes(
        json!([{"fields": ["status", "-dueDate", "-createdAt", "id"]}]),
    ));
    assert_eq!(
        schema.indexes[0].columns(),
        [
            ("status", false),
            ("dueDate", true),
            ("createdAt", true),
            ("id", false)
        ]
    );
    fails_at(
        with_indexes(json!([{"fields": ["-"]}])),
        "/indexes/0/fields/0",
    );
    fails_at(
        with_indexes(json!([{"fields": ["--status"]}])),
        "/indexes/0/fields/0",
    );
    fails_at(
        with_indexes(json!([{"fields": ["due_date"]}])),
        "/indexes/0/fields/0",
    );
}

#[test]
fn index_fields_non_empty_strings_without_repeats() {
    assert_eq!(
        fails_at(with_indexes(json!([{"fields": []}])), "/indexes/0/fields"),
        "index must list at least one field"
    );
    assert_eq!(
        fails_at(with_indexes(json!([{"unique": true}])), "/indexes/0/fields"),
        "index is missing `fields`"
    );
    fails_at(
        with_indexes(json!([{"fields": "status"}])),
        "/indexes/0/fields",
    );
    fails_at(
        with_indexes(json!([{"fields": [1]}])),
        "/indexes/0/fields/0",
    );
    assert_eq!(
        fails_at(
            with_indexes(json!([{"fields": ["status", "-status"]}])),
            "/indexes/0/fields/1"
        ),
        "index lists field `status` twice"
    );
}

#[test]
fn index_unique_is_boolean() {
    assert_eq!(
        fails_at(
            with_indexes(json!([{"fields": ["status"], "unique": "yes"}])),
            "/indexes/0/unique"
        ),
        "`unique` must be a boolean, found the string `yes`"
    );
    assert!(
        passes(with_indexes(
            json!([{"fields": ["status"], "unique": true}])
        ))
        .indexes[0]
            .unique
    );
}

#[test]
fn index_names() {
    assert_eq!(
        fails_at(
            with_indexes(json!([{"fields": ["status"], "name": "By Status"}])),
            "/indexes/0/name"
        ),
        "index name `By Status` must match `^[a-z][a-z0-9_]*$`"
    );
    fails_at(
        with_indexes(json!([{"fields": ["status"], "name": "a".repeat(64)}])),
        "/indexes/0/name",
    );
    passes(with_indexes(
        json!([{"fields": ["status"], "name": "a".repeat(63)}]),
    ));
    fails_at(
        with_indexes(json!([{"fields": ["status"], "name": "pg_idx"}])),
        "/indexes/0/name",
    );
    assert_eq!(
        fails_at(
            with_indexes(json!([
                {"fields": ["status"], "name": "by_status"},
                {"fields": ["dueDate"], "name": "by_status"}
            ])),
            "/indexes/1/name"
        ),
        "index name `by_status` is used twice (first at `/indexes/0`)"
    );
    passes(with_indexes(json!([{"fields": ["status"], "name": null}])));
}

#[test]
fn unknown_index_keys() {
    assert_eq!(
        fails_at(
            with_indexes(json!([{"fields": ["status"], "order": "desc"}])),
            "/indexes/0/order"
        ),
        "unknown key `order` in an index; expected `fields`, `unique` or `name`"
    );
}

#[test]
fn at_most_50_indexes() {
    let indexes = |n: usize| -> Value { (0..n).map(|_| json!({"fields": ["status"]})).collect() };
    assert_eq!(passes(with_indexes(indexes(MAX_INDEXES))).indexes.len(), 50);
    assert_eq!(
        fails_at(with_indexes(indexes(51)), "/indexes"),
        "schema has 51 indexes, more than the limit of 50"
    );
}
