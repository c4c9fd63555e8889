import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { parseImage } from "../src/swarm-spec.ts";
import {
  collector,
  docker,
  IMAGE,
  inspect,
  job,
  reportOf,
  repush,
  runner,
  running,
  servicesOfThisFile,
} from "./helpers.ts";

const service = servicesOfThisFile();
const TAGGED = parseImage(IMAGE).name;
const REPO = TAGGED.slice(0, TAGGED.lastIndexOf(":"));

/** The digest the registry serves for a tag now. */
const served = async (reference: string) => (await docker.getImage(reference).distribution()).Descriptor.digest;

/** Pushes a new build under a new tag of IMAGE's repository; its digest. */
async function pushTag(tag: string): Promise<string> {
  const container = await docker.createContainer({ Image: IMAGE, Cmd: ["true"] });
  await container.commit({ repo: REPO, tag, comment: `pushed ${Date.now()}` });
  await container.remove();
  // The engine wants an X-Registry-Auth header even for a registry without auth: "{}" in base64.
  const stream = await docker.getImage(`${REPO}:${tag}`).push({ authconfig: { key: "e30=" } });
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(null))),
  );
  return served(`${REPO}:${tag}`);
}

test("a push deploys exactly the pushed digest; after the tag moves, a job naming the old digest changes nothing", async () => {
  const before = await service("pushed");
  const name = before.Spec.Name ?? "";
  const digest = await served(TAGGED);
  const c = collector();
  const j = job(name, { image: { reference: TAGGED, digest } });
  await runner().handle(j, c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  assert.ok(c.of("progress").some((p) => p.line === `deploying ${TAGGED}@${digest} (the pushed digest, verified)`));
  const deployed = await inspect(before.ID);
  assert.equal(deployed.Spec.TaskTemplate?.ContainerSpec?.Image, `${TAGGED}@${digest}`);
  assert.equal(deployed.Spec.TaskTemplate?.ForceUpdate, (before.Spec.TaskTemplate?.ForceUpdate ?? 0) + 1);
  assert.equal(deployed.Spec.Labels?.["io.dockercloud.action"], j.action);
  assert.equal((await running(before.ID))[0]?.Spec?.ContainerSpec?.Image, `${TAGGED}@${digest}`);

  const moved = await repush();
  assert.notEqual(moved, digest);
  const stale = collector();
  await runner().handle(job(name, { image: { reference: TAGGED, digest } }), stale.send);
  const failed = reportOf(stale);
  assert.equal(failed.result, "failed");
  assert.equal(
    failed.detail,
    `the registry serves ${moved} for ${TAGGED}, not the pushed ${digest}; the service was left as it was`,
  );
  assert.equal(stale.of("applied").length, 0);
  const after = await inspect(before.ID);
  assert.equal(after.Version?.Index, deployed.Version?.Index, "the spec was not written");
  assert.equal(after.Spec.TaskTemplate?.ForceUpdate, deployed.Spec.TaskTemplate?.ForceUpdate);
  assert.equal(after.Spec.TaskTemplate?.ContainerSpec?.Image, `${TAGGED}@${digest}`);
});

test("a push of a new tag moves the service to it; a tag the registry lacks fails", async () => {
  const before = await service("newtag");
  const name = before.Spec.Name ?? "";
  const tag = `pushed-${randomUUID().slice(0, 8)}`;
  const digest = await pushTag(tag);
  const c = collector();
  await runner().handle(job(name, { image: { reference: `${REPO}:${tag}`, digest: null } }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  assert.ok(c.of("progress").some((p) => p.line === `the service moves from ${TAGGED} to ${REPO}:${tag}`));
  assert.ok(c.of("progress").some((p) => p.line.endsWith("(resolved: the push named no digest)")));
  const after = await inspect(before.ID);
  assert.equal(after.Spec.TaskTemplate?.ContainerSpec?.Image, `${REPO}:${tag}@${digest}`);
  assert.equal((await running(before.ID))[0]?.Spec?.ContainerSpec?.Image, `${REPO}:${tag}@${digest}`);

  const missing = collector();
  await runner().handle(job(name, { image: { reference: `${REPO}:${tag}-gone`, digest } }), missing.send);
  const failed = reportOf(missing);
  assert.equal(failed.result, "failed");
  assert.equal(
    failed.detail,
    `${REPO}:${tag}-gone does not exist in the registry: manifest unknown: manifest unknown; the service was left as it was`,
  );
  assert.equal((await inspect(before.ID)).Version?.Index, after.Version?.Index, "the spec was not written");
});
