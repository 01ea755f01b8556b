// What every dashboard view is: a root element the shell shows, started when shown and
// stopped when left (to end polling and timers).

export interface View {
  readonly root: HTMLElement;
  start(): Promise<void>;
  stop(): void;
}
