// What the workers write: their JSON log lines, read for start-up, health ports and correlation ids.

/** Worker output: counts started services and maps each correlationId to the services that logged it. */
export class LogCollector {
  started = 0;
  /** Health port of each running process (latest start wins), from its "health server listening" line. */
  private readonly ports = new Map<string, number>();
  readonly services = new Map<string, Set<string>>();
  private readonly recent: string[] = [];
  private readonly partial = new Map<string, string>();

  add(service: string, chunk: string, instance = 0): void {
    const key = `${service}#${instance}`;
    const text = (this.partial.get(key) ?? '') + chunk;
    const lines = text.split('\n');
    this.partial.set(key, lines.pop() ?? '');
    for (const line of lines) {
      if (!line) continue;
      this.recent.push(`[${service}] ${line}`);
      if (this.recent.length > 200) this.recent.shift();
      if (line.includes('"service started"')) this.started++;
      const health = /"healthPort":(\d+)/.exec(line);
      if (health?.[1]) this.ports.set(key, Number(health[1]));
      const match = /"correlationId":"([^"]+)"/.exec(line);
      if (match?.[1]) {
        const seen = this.services.get(match[1]) ?? new Set<string>();
        seen.add(service);
        this.services.set(match[1], seen);
      }
    }
  }

  healthPorts(): number[] {
    return [...this.ports.values()];
  }

  tail(chars: number): string {
    return this.recent.join('\n').slice(-chars);
  }
}
