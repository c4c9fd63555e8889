/**
 * Which orchestrator services the agent may act on. The service decides what
 * to do, but the agent decides where: nothing is touched unless a rule given
 * on its command line allows it, and allowing everything must be said
 * outright (`--allow-all`).
 */
export type AllowRules = {
  all: boolean;
  /** Services with this label set to this value. */
  labels: { key: string; value: string }[];
  /** Services with this exact name. */
  services: string[];
};

export const NO_RULES: AllowRules = { all: false, labels: [], services: [] };

/** Adds one `--allow-label KEY=VALUE`, `--allow-service NAME` or `--allow-all` to the rules, or says why not. */
export function addRule(rules: AllowRules, flag: string, value: string | undefined): AllowRules | string {
  if (flag === "allow-all") {
    if (value !== undefined && value !== "true") return "--allow-all takes no value";
    return { ...rules, all: true };
  }
  if (flag === "allow-service") {
    // A Swarm service's name, or a docker host's `<compose project>/<compose service>` or standalone name.
    if (!value || !/^([a-z0-9][a-z0-9_-]{0,62}\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(value)) {
      return `--allow-service needs a service name (or <compose project>/<compose service>), not '${value ?? ""}'`;
    }
    return { ...rules, services: [...rules.services, value] };
  }
  if (flag === "allow-label") {
    const at = value?.indexOf("=") ?? -1;
    if (!value || at < 1) return `--allow-label needs KEY=VALUE, not '${value ?? ""}'`;
    return { ...rules, labels: [...rules.labels, { key: value.slice(0, at), value: value.slice(at + 1) }] };
  }
  return `unknown rule --${flag}`;
}

export const hasRules = (rules: AllowRules) => rules.all || rules.labels.length > 0 || rules.services.length > 0;

/** Why the agent may not act on a service, or null when a rule allows it. */
export function refusal(rules: AllowRules, service: { name: string; labels: Record<string, string> }): string | null {
  if (rules.all) return null;
  if (rules.services.includes(service.name)) return null;
  if (rules.labels.some((l) => service.labels[l.key] === l.value)) return null;
  return `the agent's rules do not allow it to act on service '${service.name}' (allowed: ${describe(rules)})`;
}

export function describe(rules: AllowRules): string {
  if (rules.all) return "every service";
  const parts = [...rules.services.map((s) => `service ${s}`), ...rules.labels.map((l) => `label ${l.key}=${l.value}`)];
  return parts.length ? parts.join(", ") : "nothing";
}
