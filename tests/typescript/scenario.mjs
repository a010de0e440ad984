// The generated client against a running `metaengine serve` (run by the CLI test
// crates/metaengine-cli/tests/codegen.rs): MODULE is the generated module compiled to
// JavaScript, BASE the server's URL, TOKEN an admin's token. Prints `ok` when every step held.
import assert from "node:assert/strict";

const { createClient, ProblemError, InvoiceSchema, InvoiceCreateSchema } = await import(process.env.MODULE);
const api = createClient({ baseUrl: process.env.BASE, token: process.env.TOKEN });
const problem = (status, check = () => true) => (e) =>
  e instanceof ProblemError && e.status === status && e.problem.status === status && check(e.problem);

const created = await api.Invoice.create({
  invoiceNumber: "INV-1",
  customerId: "c-1",
  totalAmount: "12.50",
  status: "sent",
  dueDate: "2026-12-31",
});
assert.equal(created.rowVersion, 1);
assert.equal(created.totalAmount, "12.50");
// The record the API answers is what the generated record schema describes.
InvoiceSchema.strict().parse(created);
await api.Invoice.create({ invoiceNumber: "INV-2", customerId: "c-2", totalAmount: "3.00" });

const page = await api.Invoice.list({
  filter: { status: { eq: "sent" } },
  orderBy: "invoiceNumber",
  count: "exact",
});
assert.deepEqual(page.data.map((r) => r.invoiceNumber), ["INV-1"]);
page.data.forEach((r) => InvoiceSchema.strict().parse(r));
assert.equal(page.meta.total, 1);
assert.equal(await api.Invoice.count({ filter: { status: { in: ["sent", "paid"] } } }), 1);

const updated = await api.Invoice.update(created.id, { status: "paid" }, { ifMatch: created.rowVersion });
assert.equal(updated.status, "paid");
assert.equal(updated.rowVersion, 2);
// Someone else's change came first: 412.
await assert.rejects(
  api.Invoice.update(created.id, { status: "sent" }, { ifMatch: 1 }),
  problem(412, (p) => p.code === "stale_row_version"),
);
// A value the schema refuses: 422 at its pointer; Zod refuses it before sending too.
const invalid = { invoiceNumber: "INV-3", customerId: "c-3", totalAmount: "-1" };
await assert.rejects(
  api.Invoice.create(invalid),
  problem(422, (p) => p.errors.some((e) => e.pointer === "/totalAmount")),
);
assert.equal(InvoiceCreateSchema.safeParse(invalid).success, false);
assert.equal(InvoiceCreateSchema.safeParse({ ...invalid, totalAmount: "1.5" }).success, true);

await api.Invoice.delete(created.id, { ifMatch: 2 });
await assert.rejects(api.Invoice.get(created.id), problem(404));
console.log("ok");
