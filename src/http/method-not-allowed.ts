/** Finds the methods other routes accept on a path, for 405 answers with `Allow`. */
export class RouteTable {
  private compiled: { method: string; pattern: RegExp }[] | null = null;

  constructor(private readonly routes: () => readonly { method: string; path: string }[]) {}

  allowed(path: string): string[] {
    this.compiled ??= this.routes()
      .filter((r) => r.method !== "ALL")
      .map((r) => ({
        method: r.method,
        pattern: new RegExp(
          `^${r.path
            .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
            .replace(/:[A-Za-z_]+/g, "[^/]+")
            .replace(/\*/g, ".*")}$`,
        ),
      }));
    const methods = new Set(this.compiled.filter((r) => r.pattern.test(path)).map((r) => r.method));
    return [...methods].sort();
  }
}
