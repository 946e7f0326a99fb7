// queryUsers through Authsignal's official Node SDK (@authsignal/node), as a backend calls it:
// by username (case-insensitive), by phone number, by email a page at a time with
// lastEvaluatedUserId, and with no filter. Exits non-zero naming the first wrong answer.
import { Authsignal } from "@authsignal/node";

const authsignal = new Authsignal({
  apiSecretKey: process.env.LKCLI_SECRET_KEY,
  apiUrl: process.env.LKCLI_BASE_URL,
});
const must = (ok, what, got) => {
  if (!ok) {
    console.error(`not ok: ${what}: ${JSON.stringify(got)}`);
    process.exit(1);
  }
  console.log(`ok ${what}`);
};
const run = Date.now().toString(36);
const id = (n) => `node-${run}-${n}`;
for (const [n, username] of [[1, `Alice-${run}`], [2, `Bob-${run}`], [3, `Carol-${run}`]]) {
  await authsignal.updateUser({
    userId: id(n),
    attributes: { email: `team-${run}@example.com`, phoneNumber: `+6421${run.length}0000${n}`, username },
  });
}
let r = await authsignal.queryUsers({ username: `ALICE-${run}` });
must(r.users.length === 1 && r.users[0].userId === id(1), "queryUsers by username, any case", r);
r = await authsignal.queryUsers({ phoneNumber: `+6421${run.length}00002` });
must(r.users.length === 1 && r.users[0].userId === id(2), "queryUsers by phoneNumber", r);
r = await authsignal.queryUsers({ email: `team-${run}@example.com`, limit: 2 });
must(r.users.length === 2 && r.lastEvaluatedUserId === id(2), "queryUsers by email, first page", r);
r = await authsignal.queryUsers({ email: `team-${run}@example.com`, limit: 2, lastEvaluatedUserId: r.lastEvaluatedUserId });
must(r.users.length === 1 && r.users[0].userId === id(3) && !r.lastEvaluatedUserId, "queryUsers, last page", r);
r = await authsignal.queryUsers({});
must([1, 2, 3].every((n) => r.users.some((u) => u.userId === id(n))), "queryUsers with no filter lists the users", r);
