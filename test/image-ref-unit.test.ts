import { parseAll } from "@swimlane/docker-reference";
import fc from "fast-check";
import semver from "semver";
import { describe, expect, it } from "vitest";
import { decidePush, type ImageRef, type PushedTag, parseReference, sameRepository } from "../src/domain/image-ref";
import type { AutoredeployPolicy } from "../src/domain/service";

const SHA256 = `sha256:${"0123456789abcdef".repeat(4)}`;
const SHA512 = `sha512:${"0123456789abcdef".repeat(8)}`;
const ref = (
  registry: string,
  repository: string,
  tag: string | null = null,
  digest: string | null = null,
): ImageRef => ({
  registry,
  repository,
  tag,
  digest,
});

describe("parseReference: normalisation", () => {
  it.each<[string, ImageRef]>([
    ["nginx", ref("docker.io", "library/nginx")],
    ["library/nginx", ref("docker.io", "library/nginx")],
    ["docker.io/nginx", ref("docker.io", "library/nginx")],
    ["docker.io/library/nginx", ref("docker.io", "library/nginx")],
    ["index.docker.io/library/nginx:latest", ref("docker.io", "library/nginx", "latest")],
    ["index.docker.io/nginx", ref("docker.io", "library/nginx")],
    ["registry-1.docker.io/nginx:1.27", ref("docker.io", "library/nginx", "1.27")],
    ["DOCKER.IO/nginx", ref("docker.io", "library/nginx")],
    ["nginx:1.27", ref("docker.io", "library/nginx", "1.27")],
    ["team/app:v1.2.3", ref("docker.io", "team/app", "v1.2.3")],
    ["localhost:5000/a/b", ref("localhost:5000", "a/b")],
    ["localhost/a", ref("localhost", "a")],
    [`127.0.0.1:5000/a/b:1@${SHA256}`, ref("127.0.0.1:5000", "a/b", "1", SHA256)],
    ["Registry.Example.COM/team/app", ref("registry.example.com", "team/app")],
    ["registry.example.com:443/team/app", ref("registry.example.com:443", "team/app")],
    // A port makes another address, even Docker Hub's, and no official-image prefix then.
    ["docker.io:443/nginx", ref("docker.io:443", "nginx")],
    ["registry.example.com/nginx", ref("registry.example.com", "nginx")],
    ["quay.io/org/sub/app:1.0-rc_1", ref("quay.io", "org/sub/app", "1.0-rc_1")],
    ["team/my-app__x.y/z--w", ref("docker.io", "team/my-app__x.y/z--w")],
    [`nginx@${SHA256}`, ref("docker.io", "library/nginx", null, SHA256)],
    [`registry:5000/team/app:1.2@${SHA512}`, ref("registry:5000", "team/app", "1.2", SHA512)],
  ])("%s", (input, expected) => {
    expect(parseReference(input)).toEqual(expected);
  });

  it.each([
    ["an upper-case repository", "Nginx"],
    ["an upper-case path component", "team/App"],
    ["an upper-case path under a host", "registry.example.com/Team/app"],
    ["an upper-case first component without a host's '.' or ':'", "Foo/bar"],
    ["the empty string", ""],
    ["an empty tag", "nginx:"],
    ["no name", ":1"],
    ["an empty path component", "a//b"],
    ["a leading slash", "/a"],
    ["a trailing slash", "a/"],
    ["a space", "nginx:1 2"],
    ["a leading space", " nginx"],
    ["a newline", "nginx\n"],
    ["a non-ASCII name", "nginx😀"],
    ["a separator at the end of a component", "team-/app"],
    ["a tag of 129 characters", `nginx:${"a".repeat(129)}`],
    ["a name of more than 255 characters", `registry.example.com/${"a".repeat(240)}`],
    ["a short digest", `nginx@${SHA256.slice(0, -1)}`],
    ["an unknown digest algorithm", `nginx@md5:${"a".repeat(32)}`],
    ["an upper-case digest", `nginx@${SHA256.toUpperCase().replace("SHA256", "sha256")}`],
    ["a digest-only reference", SHA256],
    ["a bare 64-hex identifier", SHA256.slice("sha256:".length)],
    ["an IPv6 host (not in this grammar)", "[::1]:5000/a"],
    ["text longer than any reference", `${"a".repeat(2000)}`],
  ])("refuses %s", (_what, input) => {
    expect(parseReference(input)).toBeNull();
  });

  it("refuses input that is not a string", () => {
    for (const input of [null, undefined, 5, {}, ["nginx"]])
      expect(parseReference(input as unknown as string)).toBeNull();
  });

  it("answers at once on input that makes the package's shipped grammar backtrack exponentially", () => {
    const hostile = [
      `${"a".repeat(24)}!`,
      `acme/${"b".repeat(60)}:`,
      `registry.example.com/team/${"c".repeat(40)}:1.0@sha256:abc`,
      `${"a".repeat(1000)}!`,
      `${"a-".repeat(500)}!`,
      `${"a.".repeat(500)}a!`,
      `${"a/".repeat(500)}!`,
      `${"a__".repeat(330)}!`,
    ];
    const started = Date.now();
    for (const input of hostile) expect(parseReference(input), input.slice(0, 40)).toBeNull();
    // The shipped grammar took seconds for 17 letters and doubles with each one more.
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("accepts exactly what the package as shipped accepts (short strings, where it is still quick)", () => {
    const alphabet = fc.constantFrom(..."ab0Z.-_/:@".split(""));
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 12 }), (input) => {
        let shipped: string | null;
        try {
          shipped = parseAll(input).repository ?? null;
        } catch {
          shipped = null;
        }
        const ours = parseReference(input);
        expect(ours !== null, input).toBe(shipped !== null && shipped !== "");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("sameRepository", () => {
  const parsed = (s: string) => parseReference(s) as ImageRef;
  it.each([
    ["nginx", "docker.io/library/nginx:1.27", true],
    ["nginx:1", `index.docker.io/nginx@${SHA256}`, true],
    ["registry-1.docker.io/team/app", "team/app:2", true],
    ["Registry.Example.com/team/app", "registry.example.com/team/app:1", true],
    ["registry.example.com/team/app", "registry.example.com:5000/team/app", false],
    ["localhost:5000/a/b", "localhost:5001/a/b", false],
    ["nginx", "registry.example.com/nginx", false],
    ["team/app", "team/app2", false],
    ["team/app", "other/team/app", false],
  ])("%s and %s: %s", (a, b, same) => {
    expect(sameRepository(parsed(a), parsed(b))).toBe(same);
    expect(sameRepository(parsed(b), parsed(a))).toBe(same);
  });
});

const push = (repository: string, tag: string, registry: string | null = null): PushedTag => ({
  registry,
  repository,
  tag,
});
const yes = (tag: string) => ({ redeploy: true, tag });
const no = (reason: string) => ({ redeploy: false, reason });

describe("decidePush: repository", () => {
  it.each<[string, string | null, PushedTag, boolean]>([
    ["a path-only push matches on the path", "registry:5000/team/app:1.2", push("team/app", "1.2"), true],
    ["a path-only push of another path", "registry:5000/team/app:1.2", push("team/other", "1.2"), false],
    ["a path-only push is compared as given", "nginx:1.27", push("nginx", "1.27"), false],
    ["a path-only push of library/nginx", "nginx:1.27", push("library/nginx", "1.27"), true],
    ["Docker Hub: docker.io and a familiar name", "nginx:1.27", push("nginx", "1.27", "docker.io"), true],
    ["Docker Hub: index.docker.io", "nginx:1.27", push("library/nginx", "1.27", "index.docker.io"), true],
    ["Docker Hub: registry-1.docker.io", "docker.io/team/app:1", push("team/app", "1", "registry-1.docker.io"), true],
    [
      "host case does not matter",
      "Registry.Example.com/team/app:1",
      push("team/app", "1", "registry.EXAMPLE.com"),
      true,
    ],
    [
      "another port is another registry",
      "registry.example.com:5000/team/app:1",
      push("team/app", "1", "registry.example.com"),
      false,
    ],
    ["another registry", "registry.example.com/team/app:1", push("team/app", "1", "docker.io"), false],
    [
      "Docker Hub's push does not match a private nginx",
      "registry.example.com/nginx:1",
      push("nginx", "1", "docker.io"),
      false,
    ],
    ["a registry no reference can name", "team/app:1", push("team/app", "1", "harbor"), false],
  ])("%s", (_what, image, pushed, redeploys) => {
    expect(decidePush(image, "tag", pushed).redeploy).toBe(redeploys);
  });

  it("says why", () => {
    expect(decidePush(null, "tag", push("nginx", "1"))).toEqual(no("the service has no image"));
    expect(decidePush("", "major", push("nginx", "1"))).toEqual(no("the service has no image"));
    expect(decidePush("Team/App", "tag", push("team/app", "1"))).toEqual(
      no('the service image "Team/App" is not a valid image reference'),
    );
    expect(decidePush("team/app:1", "tag", push("Team/App", "1"))).toEqual(
      no('the pushed image "Team/App:1" is not a valid image reference'),
    );
    expect(decidePush("team/app:1", "tag", push("team/app", "bad tag", "docker.io"))).toEqual(
      no('the pushed image "docker.io/team/app:bad tag" is not a valid image reference'),
    );
    expect(decidePush("team/app:1", "tag", push("team/other", "1", "docker.io"))).toEqual(
      no("another repository: the service runs docker.io/team/app"),
    );
  });
});

describe("decidePush: policy tag", () => {
  it.each<[string, string, ReturnType<typeof yes> | ReturnType<typeof no>]>([
    ["registry:5000/team/app:1.2", "1.2", yes("1.2")],
    ["registry:5000/team/app:1.2", "1.3", no("the service runs tag 1.2, not 1.3")],
    [`registry:5000/team/app:1.2@${SHA256}`, "1.2", yes("1.2")],
    ["registry:5000/team/app", "latest", yes("latest")],
    ["registry:5000/team/app", "1.2", no("the service runs tag latest, not 1.2")],
    [`registry:5000/team/app@${SHA256}`, "latest", no("the service runs a pinned digest, not a tag")],
    ["registry:5000/team/app:v1.2.3", "1.2.3", no("the service runs tag v1.2.3, not 1.2.3")],
  ])("%s, push of %s", (image, tag, expected) => {
    expect(decidePush(image, "tag", push("team/app", tag, "registry:5000"))).toEqual(expected);
  });
});

describe("decidePush: semver policies", () => {
  const decide = (policy: AutoredeployPolicy, running: string, pushed: string) =>
    decidePush(`registry.example.com/team/app:${running}`, policy, push("team/app", pushed, "registry.example.com"));

  it.each<[AutoredeployPolicy, string, string, ReturnType<typeof yes> | ReturnType<typeof no>]>([
    ["patch", "1.2.4", "1.2.5", yes("1.2.5")],
    ["patch", "1.2.4", "1.2.4", yes("1.2.4")],
    ["patch", "1.2.4", "1.3.0", no("1.3.0 is outside the patch range of 1.2.4")],
    ["patch", "1.2.4", "1.2.3", no("1.2.3 is lower than 1.2.4")],
    ["minor", "1.2.4", "1.3.0", yes("1.3.0")],
    ["minor", "1.2.4", "2.0.0", no("2.0.0 is outside the minor range of 1.2.4")],
    ["minor", "0.2.4", "0.3.0", yes("0.3.0")],
    ["major", "1.2.4", "2.0.0", yes("2.0.0")],
    ["major", "1.2.4", "10.0.0", yes("10.0.0")],
    ["major", "1.2.4", "1.2.3", no("1.2.3 is lower than 1.2.4")],
    // Pre-releases: only on the line the service runs.
    ["patch", "1.2.3-rc.1", "1.2.3-rc.2", yes("1.2.3-rc.2")],
    ["patch", "1.2.3-rc.1", "1.2.3", yes("1.2.3")],
    ["patch", "1.2.3-rc.1", "1.2.4", yes("1.2.4")],
    ["patch", "1.2.3-rc.2", "1.2.3-rc.1", no("1.2.3-rc.1 is lower than 1.2.3-rc.2")],
    ["patch", "1.2.3", "1.2.4-rc.1", no("1.2.4-rc.1 is a pre-release outside the line of 1.2.3")],
    ["major", "1.2.3-rc.1", "2.0.0-rc.1", no("2.0.0-rc.1 is a pre-release outside the line of 1.2.3-rc.1")],
    ["major", "1.2.3", "1.2.3-rc.1", no("1.2.3-rc.1 is lower than 1.2.3")],
    // A leading "v", on either side.
    ["patch", "v1.2.3", "v1.2.4", yes("v1.2.4")],
    ["patch", "v1.2.3", "1.2.4", yes("1.2.4")],
    ["minor", "1.2.3", "v1.4.0", yes("v1.4.0")],
    ["patch", "v1.2.3", "1.2.3", no("1.2.3 is the version the service runs (as v1.2.3)")],
    // Partial versions: exactly major or major.minor, read as their lowest version.
    ["patch", "1.2", "1.2.5", yes("1.2.5")],
    ["minor", "1", "1.4", yes("1.4")],
    ["minor", "v1", "v1.4.2", yes("v1.4.2")],
    ["patch", "1.2", "1.2.0", no("1.2.0 is the version the service runs (as 1.2)")],
    ["patch", "1.2.3", "1.2", no("1.2 is lower than 1.2.3")],
    ["major", "1.2", "2", yes("2")],
    // Tags that hold a version but are not one.
    // A variant suffix reads as a pre-release, so a variant is never taken from a release.
    ["patch", "1.2.3", "1.2.4-alpine", no("1.2.4-alpine is a pre-release outside the line of 1.2.3")],
    [
      "patch",
      "1.2-alpine",
      "1.2.4",
      no("the service's tag 1.2-alpine is not a semantic version, which the patch policy needs"),
    ],
    [
      "minor",
      "latest",
      "1.3.0",
      no("the service's tag latest is not a semantic version, which the minor policy needs"),
    ],
    ["minor", "1.2.3", "latest", no("latest is not a semantic version, which the minor policy needs")],
    ["major", "1.2.3", "alpine-3.19", no("alpine-3.19 is not a semantic version, which the major policy needs")],
    ["major", "1.2.3", "1.2.3.4", no("1.2.3.4 is not a semantic version, which the major policy needs")],
    ["major", "1.2.3", "01.2", no("01.2 is not a semantic version, which the major policy needs")],
    // A re-push of the tag the service runs redeploys, version or not.
    ["minor", "latest", "latest", yes("latest")],
    ["major", "stable", "stable", yes("stable")],
  ])("%s: %s -> %s", (policy, running, pushed, expected) => {
    expect(decide(policy, running, pushed)).toEqual(expected);
  });

  it("checks the repository before the version", () => {
    expect(decidePush("team/app:1.2.3", "major", push("team/other", "2.0.0", "docker.io"))).toEqual(
      no("another repository: the service runs docker.io/team/app"),
    );
  });
});

describe("properties", () => {
  const POLICIES: AutoredeployPolicy[] = ["tag", "patch", "minor", "major"];
  const referenceText = fc.string({ unit: fc.constantFrom(..."abz09.-_/:@AZ ".split("")), maxLength: 300 });

  it("parseReference never throws", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary" }), referenceText), (input) => {
        parseReference(input);
      }),
      { numRuns: 3000 },
    );
  });

  it("decidePush never throws", () => {
    const text = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), referenceText);
    fc.assert(
      fc.property(
        fc.option(text),
        fc.oneof(fc.constantFrom(...POLICIES), fc.string() as fc.Arbitrary<AutoredeployPolicy>),
        fc.record({ registry: fc.option(text), repository: text, tag: text }),
        (image, policy, pushed) => {
          decidePush(image, policy, pushed);
        },
      ),
      { numRuns: 3000 },
    );
  });

  // Hosts as written, with the host and path that Docker reads from them; no host means Docker Hub.
  const HOSTS: [string | null, string][] = [
    [null, "docker.io"],
    ["docker.io", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["registry-1.docker.io", "docker.io"],
    ["Registry.Example.com", "registry.example.com"],
    ["registry.example.com", "registry.example.com"],
    ["registry.example.com:5000", "registry.example.com:5000"],
    ["localhost:5000", "localhost:5000"],
  ];
  const PATHS = ["nginx", "library/nginx", "team/app", "team/app-2", "deep/team/app"];
  const TAGS = ["latest", "1.2", "1.2.3", "v1.2.3", "1.2.4-rc.1"];
  const canonicalPath = (host: string, path: string) =>
    host === "docker.io" && !path.includes("/") ? `library/${path}` : path;

  it("policy tag redeploys exactly when the normalised repositories match and the tags are equal", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HOSTS),
        fc.constantFrom(...PATHS),
        fc.option(fc.constantFrom(...TAGS)),
        fc.boolean(),
        fc.constantFrom(...HOSTS),
        fc.boolean(),
        fc.constantFrom(...PATHS),
        fc.constantFrom(...TAGS),
        (sHost, sPath, sTag, pinned, pHost, pathOnly, pPath, pTag) => {
          const image = `${sHost[0] ? `${sHost[0]}/` : ""}${sPath}${sTag ? `:${sTag}` : ""}${pinned ? `@${SHA256}` : ""}`;
          const pushed = push(pPath, pTag, pathOnly ? null : (pHost[0] ?? "docker.io"));
          const servicePath = canonicalPath(sHost[1], sPath);
          const sameRepo = pathOnly
            ? pPath === servicePath
            : pHost[1] === sHost[1] && canonicalPath(pHost[1], pPath) === servicePath;
          const runs = sTag ?? (pinned ? null : "latest");
          const decision = decidePush(image, "tag", pushed);
          expect(decision.redeploy, `${image} <- ${JSON.stringify(pushed)}`).toBe(sameRepo && runs === pTag);
          if (decision.redeploy) expect(decision.tag).toBe(pTag);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("a semver policy never redeploys to a lower version, nor outside its range", () => {
    const core = fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 3 }), fc.nat({ max: 3 }));
    const tag = fc
      .record({
        core,
        pre: fc.option(fc.constantFrom("rc.1", "rc.2", "alpha", "beta.3")),
        v: fc.boolean(),
        form: fc.constantFrom("full", "major.minor", "major"),
      })
      .map(({ core: [a, b, c], pre, v, form }) => {
        const text =
          form === "major" ? `${a}` : form === "major.minor" ? `${a}.${b}` : `${a}.${b}.${c}${pre ? `-${pre}` : ""}`;
        return `${v ? "v" : ""}${text}`;
      });
    const version = (t: string) => semver.parse(t) ?? (semver.coerce(t) as semver.SemVer);
    fc.assert(
      fc.property(
        fc.constantFrom<AutoredeployPolicy>("patch", "minor", "major"),
        tag,
        tag,
        (policy, running, pushed) => {
          const decision = decidePush(`team/app:${running}`, policy, push("team/app", pushed, "docker.io"));
          if (!decision.redeploy) return;
          expect(decision.tag).toBe(pushed);
          const from = version(running);
          const to = version(pushed);
          expect(semver.gte(to, from), `${running} -> ${pushed}`).toBe(true);
          if (policy !== "major") expect(to.major).toBe(from.major);
          if (policy === "patch") expect(to.minor).toBe(from.minor);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
