import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainError } from '../domain/errors.js';
import {
  buttonSteps, comboChord, moveEvents, scrollSteps, textChords,
  type KeyChord, type MouseAction, type MouseButton, type PointerEvent,
} from '../domain/screen-input.js';
import type { Vm } from '../domain/vm.js';
import type { VmInstance } from '../ports/hypervisor.js';
import { qemuStep } from './qemu-step.js';
import type { VmService } from './vm-service.js';

/** How long each key is held (and the gap QEMU leaves between key events): its own default key delay. */
const KEY_HOLD_MS = 10;
/**
 * Key events handed to QEMU at a time. Its key queue drops events beyond 1024 entries (three per key
 * event), so a long text goes in batches, each sent once the one before has been typed.
 */
const KEY_BATCH = 48;

export type ScreenInput =
  | { keys: string[] }
  | { text: string }
  | { mouse: { x: number; y: number; button?: 'left' | 'middle' | 'right'; action?: MouseAction } }
  | { scroll: { direction: 'up' | 'down'; clicks?: number; x?: number; y?: number } };

export interface InputResult {
  /** Key presses (keys, text) or pointer events (mouse, scroll) delivered. */
  events: number;
  /** The screen size the pointer position was scaled with, when a position was given. */
  screen?: { width: number; height: number };
}

/**
 * The VM's screen as a device: its VNC server for viewers, and keyboard and pointer input for scripts and
 * agents that have no VNC client. Input goes in through QMP, so it works whether or not anyone views.
 */
export class ScreenService {
  /** Input of one VM, one request at a time: two texts typed at once would interleave their characters. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly d: { vms: VmService }) {}

  /** The VM whose VNC server a viewer may attach to: running or paused (a paused screen still shows). */
  vncTarget(ref: string): Vm {
    return this.d.vms.liveInstance(ref).vm;
  }

  /** A connection of its own to the VM's VNC server, for one viewer; it ends when QEMU does. */
  async openVnc(ref: string): Promise<Duplex> {
    const { vm, instance } = this.d.vms.liveInstance(ref);
    return qemuStep(`connecting to the screen of '${vm.name}'`, () => instance.openVnc());
  }

  async input(ref: string, input: ScreenInput): Promise<InputResult> {
    const id = this.d.vms.get(ref).id;
    const prev = this.queues.get(id) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => this.inputNow(ref, input));
    const tail = run.catch(() => undefined);
    this.queues.set(id, tail);
    tail.then(() => { if (this.queues.get(id) === tail) this.queues.delete(id); }, () => undefined);
    return run;
  }

  private async inputNow(ref: string, input: ScreenInput): Promise<InputResult> {
    const { vm, instance } = this.d.vms.liveInstance(ref);
    // A paused guest would take the input only once resumed, as a burst: refuse rather than surprise.
    if (vm.state !== 'running') {
      throw new DomainError('INVALID_STATE', `VM '${vm.name}' is ${vm.state}: input needs it running`, { state: vm.state, allowedStates: ['running'] });
    }
    const step = <T>(what: string, fn: () => Promise<T>): Promise<T> => qemuStep(`${what} on '${vm.name}'`, fn);
    if ('keys' in input) return this.type(instance, input.keys.map(comboChord), step);
    if ('text' in input) return this.type(instance, textChords(input.text), step);
    if ('mouse' in input) {
      const m = input.mouse;
      const size = await step('reading the screen size', () => instance.displaySize());
      const steps: PointerEvent[][] = [moveEvents(m.x, m.y, size), ...buttonSteps((m.button ?? 'left') as MouseButton, m.action ?? 'click')];
      return { events: await this.point(instance, steps, step), screen: size };
    }
    const s = input.scroll;
    const steps: PointerEvent[][] = [];
    let screen: InputResult['screen'];
    if (s.x !== undefined || s.y !== undefined) {
      if (s.x === undefined || s.y === undefined) throw new DomainError('VALIDATION_FAILED', 'give both x and y to scroll at a position, or neither', { field: 'scroll' });
      screen = await step('reading the screen size', () => instance.displaySize());
      steps.push(moveEvents(s.x, s.y, screen));
    }
    steps.push(...scrollSteps(s.direction, s.clicks ?? 1));
    const events = await this.point(instance, steps, step);
    return screen ? { events, screen } : { events };
  }

  /** Waits until QEMU has delivered the keys, so a screenshot taken next shows their effect. */
  private async type(instance: VmInstance, chords: KeyChord[], step: <T>(w: string, f: () => Promise<T>) => Promise<T>): Promise<InputResult> {
    for (let i = 0; i < chords.length;) {
      const batch: KeyChord[] = [];
      let keyEvents = 0;
      // At least one chord a batch, however long.
      while (i < chords.length && (batch.length === 0 || keyEvents + 2 * chords[i]!.length <= KEY_BATCH)) {
        keyEvents += 2 * chords[i]!.length;
        batch.push(chords[i++]!);
      }
      await step('typing', () => instance.sendKeys(batch, KEY_HOLD_MS));
      await sleep(keyEvents * KEY_HOLD_MS);
    }
    return { events: chords.length };
  }

  /** Each step its own batch: a guest sees a press and its release as two reports, never merged into none. */
  private async point(instance: VmInstance, steps: PointerEvent[][], step: <T>(w: string, f: () => Promise<T>) => Promise<T>): Promise<number> {
    let n = 0;
    for (const events of steps) {
      await step('moving the pointer', () => instance.sendPointer(events));
      n += events.length;
    }
    return n;
  }
}
