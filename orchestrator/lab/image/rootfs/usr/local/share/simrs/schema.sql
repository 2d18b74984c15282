-- SIMRS stand-in schema: the key columns of SIMRS Khanza's admin, pasien and reg_periksa.
-- Khanza stores the admin login AES-encrypted; its desktop client logs in with the query in
-- simrs-probe, which is why the probe runs that exact shape.
CREATE DATABASE IF NOT EXISTS sik CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
USE sik;
CREATE TABLE IF NOT EXISTS admin (
  usere VARBINARY(700) NOT NULL,
  passworde VARBINARY(700) NOT NULL,
  PRIMARY KEY (usere)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS pasien (
  no_rkm_medis VARCHAR(15) NOT NULL,
  nm_pasien VARCHAR(40) NOT NULL,
  no_ktp VARCHAR(20) NOT NULL,
  jk ENUM('L','P') NOT NULL,
  tmp_lahir VARCHAR(15) NOT NULL,
  tgl_lahir DATE NOT NULL,
  nm_ibu VARCHAR(40) NOT NULL,
  alamat VARCHAR(200) NOT NULL,
  gol_darah ENUM('A','B','O','AB','-') NOT NULL,
  agama VARCHAR(12) NOT NULL,
  tgl_daftar DATE NOT NULL,
  no_tlp VARCHAR(40) NOT NULL,
  kd_pj CHAR(3) NOT NULL,
  PRIMARY KEY (no_rkm_medis),
  KEY nm_pasien (nm_pasien)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS reg_periksa (
  no_reg VARCHAR(8) NOT NULL,
  no_rawat VARCHAR(17) NOT NULL,
  tgl_registrasi DATE NOT NULL,
  jam_reg TIME NOT NULL,
  kd_dokter VARCHAR(20) NOT NULL,
  no_rkm_medis VARCHAR(15) NOT NULL,
  kd_poli CHAR(5) NOT NULL,
  p_jawab VARCHAR(100) NOT NULL,
  biaya_reg DOUBLE NOT NULL,
  stts ENUM('Belum','Sudah','Batal','Berkas Diterima','Dirujuk','Meninggal','Dirawat','Pulang Paksa') NOT NULL,
  stts_daftar ENUM('-','Lama','Baru') NOT NULL,
  status_lanjut ENUM('Ralan','Ranap') NOT NULL,
  kd_pj CHAR(3) NOT NULL,
  status_bayar ENUM('Sudah Bayar','Belum Bayar') NOT NULL,
  PRIMARY KEY (no_rawat),
  KEY no_rkm_medis (no_rkm_medis),
  KEY tgl_registrasi (tgl_registrasi),
  CONSTRAINT reg_periksa_pasien FOREIGN KEY (no_rkm_medis) REFERENCES pasien (no_rkm_medis)
    ON UPDATE CASCADE
) ENGINE=InnoDB;
-- Khanza records every login of its desktop client here: the probe's login is a write too,
-- so a server that can read but not write (disk full) is caught like Khanza users would see it.
CREATE TABLE IF NOT EXISTS tracker (
  nip VARCHAR(20) NOT NULL,
  tgl_login DATE NOT NULL,
  jam_login TIME NOT NULL,
  KEY tgl_login (tgl_login)
) ENGINE=InnoDB;
