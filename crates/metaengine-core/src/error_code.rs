//! The stable, machine-readable codes of every refusal (SPEC §11's `code`), named by what went
//! wrong, not by an HTTP status: the layers below HTTP carry a code, and the HTTP crate's one
//! table maps each code to its problem `type`, title and status. A client tells two 409s apart
//! by their code (`unique_violation` or `version_immutable`) without reading `detail`.

use std::fmt;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// A stable error code; [`ErrorCode::as_str`] is its snake_case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients read it (`unique_violation`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    /// The request is malformed: a bad parameter, query string, path or body shape.
    BadRequest => "bad_request",
    /// A field, `orderBy`, `fields` or filter names no field of the entity.
    UnknownField => "unknown_field",
    /// A filter operator or value does not apply.
    InvalidFilter => "invalid_filter",
    /// The `after` cursor is not one this list issued.
    InvalidCursor => "invalid_cursor",
    /// A body's values break the model's rules; `errors` has one entry per problem.
    ValidationFailed => "validation_failed",
    /// No valid identity (missing, expired or invalid token).
    Unauthenticated => "unauthenticated",
    /// The caller may not do this (policies, roles, tenant).
    Forbidden => "forbidden",
    /// The body writes fields the caller may not write (SPEC §15); `errors` points at each.
    FieldForbidden => "field_forbidden",
    /// No such entity, version, record, tenant or route.
    NotFound => "not_found",
    /// The method does not apply to the route.
    MethodNotAllowed => "method_not_allowed",
    /// The client took too long to send its request.
    RequestTimeout => "request_timeout",
    /// A unique field's value is taken.
    UniqueViolation => "unique_violation",
    /// An entity, version or tenant of that name exists already.
    AlreadyExists => "already_exists",
    /// The version has been active and can no longer change.
    VersionImmutable => "version_immutable",
    /// The version is active (and cannot be deleted).
    VersionActive => "version_active",
    /// The version is not active (and cannot be deactivated).
    VersionNotActive => "version_not_active",
    /// The entity has no active version: its data API is closed.
    EntityInactive => "entity_inactive",
    /// The entity has data rows (delete it with `force`).
    HasRows => "has_rows",
    /// The activation would break stored rows; `errors` lists each breaking change.
    BreakingChanges => "breaking_changes",
    /// The record changed since the client read it (`If-Match`).
    StaleRowVersion => "stale_row_version",
    /// The record cannot be deleted: other records refer to it (SPEC §13, `onDelete: restrict`).
    StillReferenced => "still_referenced",
    /// Another change got there first, or the change is refused in the current state.
    Conflict => "conflict",
    /// The body is larger than the limit.
    PayloadTooLarge => "payload_too_large",
    /// The body is not JSON.
    UnsupportedMediaType => "unsupported_media_type",
    /// Too many requests at once.
    TooManyRequests => "too_many_requests",
    /// The server cannot answer now (not ready, or the request took too long).
    Unavailable => "unavailable",
    /// The server failed; the cause is in its log.
    Internal => "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
        }
    }
}
