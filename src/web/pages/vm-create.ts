import type { CreateVm } from '../../client/types.js';
import { act, api } from '../api.js';
import { field, h, replace } from '../dom.js';

/** Create a VM from a distro, a kernel (direct boot), a disk image or an ISO, with the API's options. */
export async function vmCreatePage(main: HTMLElement): Promise<() => void> {
  const name = h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._-]{0,62}', autocomplete: 'off' });
  const source = h('select', { name: 'source' },
    h('option', { value: 'distro' }, 'Distro (cloud image)'), h('option', { value: 'kernel' }, 'Kernel + initrd (direct boot)'),
    h('option', { value: 'image' }, 'Disk image'), h('option', { value: 'iso' }, 'ISO (installer)'), h('option', { value: 'empty' }, 'Empty disk'));
  const distro = h('select', { name: 'distro' });
  const kernel = h('input', { name: 'kernel', placeholder: 'vmlinuz' });
  const initrd = h('input', { name: 'initrd', placeholder: 'initramfs.gz' });
  const cmdline = h('input', { name: 'cmdline', placeholder: 'console=ttyS0' });
  const image = h('input', { name: 'image', placeholder: 'disk.qcow2' });
  const imageFormat = h('select', { name: 'imageFormat' }, h('option', { value: 'qcow2' }, 'qcow2'), h('option', { value: 'raw' }, 'raw'));
  const iso = h('input', { name: 'iso', placeholder: 'installer.iso' });
  const cpu = h('input', { name: 'cpu', type: 'number', min: 1, max: 64, value: 1 });
  const mem = h('input', { name: 'memoryMB', type: 'number', min: 64, step: 64, value: 512 });
  const disk = h('input', { name: 'diskGB', type: 'number', min: 1, value: 4 });
  const netMode = h('select', { name: 'network' }, h('option', { value: 'user' }, 'user (NAT)'), h('option', { value: 'none' }, 'none'));
  const ports = h('input', { name: 'ports', placeholder: '2222:22, 8080:80/tcp' });
  const ciUser = h('input', { name: 'ciUser', placeholder: 'default user' });
  const ciKeys = h('textarea', { name: 'ciKeys', rows: 2, placeholder: 'ssh-ed25519 AAAA…' });
  const autostart = h('input', { type: 'checkbox', name: 'autostart' });
  const submit = h('button', { type: 'submit' }, 'Create');

  const groups = {
    distro: h('fieldset', {}, h('legend', {}, 'Distro'), field('Distro', distro),
      field('Cloud-init user', ciUser), field('SSH authorized keys (one per line)', ciKeys)),
    kernel: h('fieldset', {}, h('legend', {}, 'Direct boot'), field('Kernel', kernel, 'A file in the images folder'), field('Initrd', initrd), field('Kernel command line', cmdline)),
    image: h('fieldset', {}, h('legend', {}, 'Disk image'), field('Image', image, 'A file in the images or transfer folder'), field('Format', imageFormat)),
    iso: h('fieldset', {}, h('legend', {}, 'ISO'), field('ISO', iso, 'A file in the images folder')),
  };
  const show = (): void => {
    for (const [k, g] of Object.entries(groups)) g.hidden = k !== source.value;
  };
  source.addEventListener('change', show);

  const form = h('form', { class: 'card form', 'aria-label': 'Create VM' },
    field('Name', name), field('Boot from', source),
    Object.values(groups),
    h('fieldset', {}, h('legend', {}, 'Resources'), h('div', { class: 'row' }, field('vCPUs', cpu), field('Memory (MiB)', mem), field('Disk (GiB)', disk))),
    h('fieldset', {}, h('legend', {}, 'Network'), field('Mode', netMode), field('Port forwards', ports, 'host:guest[/tcp|udp], comma separated')),
    h('label', { class: 'check' }, autostart, ' Start when the daemon starts (autostart)'),
    h('div', { class: 'actions' }, submit));
  replace(main, h('h1', {}, 'Create VM'), form);
  show();

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(`Create ${name.value.trim()}`, async () => {
    const body: CreateVm = { name: name.value.trim(), cpu: Number(cpu.value), memoryMB: Number(mem.value), diskGB: Number(disk.value) };
    const forwards = ports.value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
      const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(s);
      if (!m) throw new Error(`port forward '${s}' is not host:guest[/tcp|udp]`);
      return { host: Number(m[1]), guest: Number(m[2]), protocol: (m[3] ?? 'tcp') as 'tcp' | 'udp' };
    });
    body.network = { mode: netMode.value as 'user' | 'none', portForwards: forwards };
    if (autostart.checked) body.autostart = true;
    if (source.value === 'distro') {
      body.distro = distro.value;
      const keys = ciKeys.value.split('\n').map((s) => s.trim()).filter(Boolean);
      if (ciUser.value || keys.length) body.cloudInit = { ...(ciUser.value ? { user: ciUser.value } : {}), ...(keys.length ? { sshAuthorizedKeys: keys } : {}) };
    }
    if (source.value === 'kernel') { body.kernel = kernel.value; if (initrd.value) body.initrd = initrd.value; if (cmdline.value) body.cmdline = cmdline.value; }
    if (source.value === 'image') { body.image = image.value; body.imageFormat = imageFormat.value as 'qcow2' | 'raw'; }
    if (source.value === 'iso') body.iso = iso.value;
      const vm = await api.createVm(body);
      location.hash = `#/vm/${encodeURIComponent(vm.id)}`;
    }, submit);
  });

  try {
    const distros = await api.listDistros();
    replace(distro, distros.map((d) => h('option', { value: d.id }, `${d.name} ${d.version} (${d.arch})${d.downloaded ? '' : ' — will download'}`)));
  } catch {
    replace(distro, h('option', { value: '' }, 'catalog unavailable'));
  }
  return () => undefined;
}
