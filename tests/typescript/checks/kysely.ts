// The generated `DB` interface is what Kysely's query builder takes: table names, columns and
// their types check at compile time (`tsc -p tests/typescript`, after the runtime test wrote
// generated/examples.ts).
import { Kysely, type Selectable } from "kysely";
import type { DB, EntInvoiceTable } from "../generated/examples";

declare const db: Kysely<DB>;

export async function unpaid(tenant: string): Promise<Selectable<EntInvoiceTable>[]> {
  return db
    .selectFrom("core.ent_invoice")
    .selectAll()
    .where("tenant_id", "=", tenant)
    .where("status", "!=", "paid")
    .orderBy("due_date", "desc")
    .execute();
}

export async function totals(tenant: string): Promise<{ invoice_number: string; total_amount: string }[]> {
  return db
    .selectFrom("core.ent_invoice")
    .select(["invoice_number", "total_amount"])
    .where("tenant_id", "=", tenant)
    .execute();
}
