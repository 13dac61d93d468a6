// The dashboard (/): plan badge, usage against the quota, uploads and the artifact table.

import { api } from './api.js';
import { ArtifactTable } from './artifacts.js';
import { byId } from './dom.js';
import { humanSize, planLabel } from './format.js';
import { startSignedInPage } from './layout.js';
import { directUpload } from './multipart.js';
import { openShareDialog, wireShareDialog } from './share-dialog.js';
import { uploadFile } from './upload.js';
import { setUpUploader } from './uploader.js';

const FREE = 'free';
// The newest /api/me: the uploader checks each file against its limits and usage before sending it.
let current = null;

/** Fill the plan badge, the usage meter and the plan warning from an /api/me answer. */
export function showPlanAndUsage(me) {
  current = me;
  const badge = byId('plan-badge');
  badge.textContent = planLabel(me.plan.name);
  badge.dataset.plan = me.plan.name;
  const { max_file: maxFile, quota } = me.plan.limits;
  const meter = byId('usage-meter');
  meter.max = quota;
  // Under 80 % the site's blue, then amber, then red from 95 %.
  meter.low = quota * 0.8;
  meter.high = quota * 0.95;
  meter.optimum = 0;
  meter.value = Math.min(me.usage.bytes, quota);
  const files = me.usage.count === 1 ? '1 file' : `${me.usage.count} files`;
  byId('usage-text').textContent = `${humanSize(me.usage.bytes)} of ${humanSize(quota)} used (${files})`;
  byId('upload-hint').textContent = `Files up to ${humanSize(maxFile)} on the ${planLabel(me.plan.name)} plan.`;
  const warning = byId('plan-warning');
  warning.hidden = !me.plan.warning;
  byId('plan-warning-text').textContent = me.plan.warning || '';
}

function uploadLimits() {
  if (!current) return null;
  const { max_file: maxFile, quota } = current.plan.limits;
  // (Direct uploads under way also hold their size from the quota, but counting them here would refuse
  // resuming one of them; the portal itself refuses what does not fit.)
  return { plan: current.plan.name, maxFile, remaining: quota - current.usage.bytes, canUpgrade: current.plan.name === FREE };
}

/** Large files straight to storage when the portal's storage takes direct uploads; the rest through the portal. */
async function chooseSend() {
  let direct = null;
  try {
    direct = (await api('/api/meta')).direct_uploads;
  } catch (_) {
    // Without the answer every file goes through the portal, which always works.
  }
  if (!direct || !direct.available) return uploadFile;
  return (file, options) => (file.size > direct.threshold ? directUpload(file, options) : uploadFile(file, options));
}

/** A direct upload's SHA-256 is checked after it lands: reload the table when that is done. */
async function watchVerification(artifact, table) {
  for (let wait = 500; wait < 60000; wait *= 1.5) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    try {
      if ((await api(`/api/artifacts/${encodeURIComponent(artifact.id)}`)).verification !== 'unverified') break;
    } catch (_) {
      return; // deleted meanwhile, or signed out
    }
  }
  await table.reload();
}

async function refreshUsage() {
  try {
    showPlanAndUsage(await api('/api/me'));
  } catch (_) {
    // The usage line is a nicety; the next page load shows it again.
  }
}

async function main() {
  const choosing = chooseSend(); // asked alongside the sign-in check, not after it
  const me = await startSignedInPage();
  if (!me) return;
  // The uploader is wired in the same step that shows the plan, so a file chosen once the page looks
  // ready is never missed.
  const send = await choosing;
  showPlanAndUsage(me);
  wireShareDialog();
  const table = new ArtifactTable({
    onChange: refreshUsage,
    onShare: (artifact, button) => openShareDialog(artifact, button, current.sharing),
  });
  setUpUploader({
    limits: uploadLimits,
    send,
    onUploaded: async (artifact) => {
      await Promise.all([table.reload(), refreshUsage()]);
      if (artifact && artifact.verification === 'unverified') watchVerification(artifact, table);
    },
  });
  await table.reload();
}

main();
