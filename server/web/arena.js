// Drawing one moment of a match on the arena canvas: the live spectator view and the replay
// viewer both draw with this.
import { units, aimRadians } from "/protocol.js";

export const color = (id) => `hsl(${(id * 137) % 360} 70% 60%)`;

// `world` gives the orbs and projectiles, `players` the (interpolated) players with `x`, `y`
// in position steps.
export function drawArena(cv, world, players, tickHz) {
  const g = cv.getContext("2d");
  const k = cv.width / 1000;
  g.fillStyle = "#0b0e14";
  g.fillRect(0, 0, cv.width, cv.height);
  g.strokeStyle = "#2a3345";
  g.strokeRect(0.5, 0.5, cv.width - 1, cv.height - 1);
  g.fillStyle = "#f0b429";
  for (const o of world.orbs) {
    g.beginPath();
    g.arc(units(o[0]) * k, units(o[1]) * k, 5 * k, 0, 2 * Math.PI);
    g.fill();
  }
  g.fillStyle = "#ffffff";
  for (const p of world.projectiles) {
    const age = world.tick - p.spawn_tick;
    const x = units(p.origin[0]) + Math.cos(aimRadians(p.aim)) * 600 * (age / tickHz);
    const y = units(p.origin[1]) + Math.sin(aimRadians(p.aim)) * 600 * (age / tickHz);
    g.beginPath();
    g.arc(x * k, y * k, 4 * k, 0, 2 * Math.PI);
    g.fill();
  }
  g.font = "11px system-ui, sans-serif";
  g.textAlign = "center";
  for (const p of players) {
    const x = units(p.x) * k;
    const y = units(p.y) * k;
    g.fillStyle = color(p.id);
    g.beginPath();
    g.arc(x, y, 15 * k, 0, 2 * Math.PI);
    g.fill();
    g.strokeStyle = "#10141c";
    g.beginPath();
    g.moveTo(x, y);
    g.lineTo(x + Math.cos(aimRadians(p.aim)) * 15 * k, y + Math.sin(aimRadians(p.aim)) * 15 * k);
    g.stroke();
    g.fillStyle = "#dde3ee";
    g.fillText(p.name, x, y - 18 * k);
  }
}
